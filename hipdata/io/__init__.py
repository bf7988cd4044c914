"""Reading data folders: files -> raw text tables -> parsed, validated canonical tables."""
