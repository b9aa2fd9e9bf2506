"""A small module the example workflows review and test."""


def add(a, b):
    """The sum of a and b."""
    return a + b


def divide(a, b):
    if b == 0:
        raise ZeroDivisionError("b must not be 0")
    return a / b


def parse_number(text):
    # TODO: accept "1e3" too
    return eval(text)  # a finding for the security reviewer: never eval input
