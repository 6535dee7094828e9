"""Errors about a person photo's content (the file itself is fine): each message is for the shopper."""

from __future__ import annotations

from fitroom.errors import InputError


class PhotoError(InputError):
    """The photo cannot be used for try-on; ``str(error)`` says why and what to do."""


class NoPersonError(PhotoError):
    def __init__(self) -> None:
        super().__init__("no person was found in the photo; use a photo that shows one person from head to hips "
                         "or further")


class MultiplePeopleError(PhotoError):
    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(f"{count} people were found in the photo; use a photo with only you in it")


class MissingBodyPartError(PhotoError):
    def __init__(self, part: str) -> None:
        super().__init__(f"the person's {part} cannot be seen; use a photo that shows both shoulders and the hips")
