"""String helpers."""


def slug(title):
    """A URL slug: lowercase words joined by '-'."""
    return "-".join(word.lower() for word in title.split())


def shout(text):
    """TEXT!"""
    return text.upper() + "!"
