"""Campaign templates: checking, compiling and rendering them, and their plain-text parts."""
