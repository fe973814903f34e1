"""Task planning: instructions to plans of skill calls, dialogue memory, and plan execution with replanning."""
