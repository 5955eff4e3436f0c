"""The Textual app: screens, widgets and styles. Only this package imports textual."""
