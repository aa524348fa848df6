"""User-facing errors: one sentence a user can act on, mapped to an exit code by the CLI."""

from __future__ import annotations


class KubetuneError(Exception):
    """An error whose message is shown to the user as-is (no traceback).

    ``exit_code`` follows the CLI convention: 1 = the job failed, 2 = bad usage or bad input.
    """

    exit_code = 1


class InputError(KubetuneError):
    """Bad input from the user: a missing file, a malformed snapshot, a wrong flag value."""

    exit_code = 2


class SnapshotError(InputError):
    """A snapshot directory that cannot be read or does not match the schema."""
