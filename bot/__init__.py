"""hamsterbot: have you run as much as my hamster?"""

__version__ = "0.1.0"
