"""The paper's network applications running on the macro through the firmware."""
