"""Where profiles' bytes go: written atomically to a path, or to an open file.

``write_bytes`` is the one writer every profile, export and collector uses;
``check_writable`` says before a long run whether it would succeed."""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import IO, Union

    Dest = Union[str, "os.PathLike[str]", IO[bytes]]


def write_bytes(dest: Dest, data: bytes) -> None:
    """Write data to a path, atomically (a temporary file renamed into place:
    a crash never leaves half a file), or to an open binary file.

    A new file gets the mode open() gives one (0666 less the umask); an
    existing file keeps its mode (and its owner, where this process may give
    it). A symbolic link is followed, as open() and Go's os.WriteFile follow
    it: its target is replaced and the link stays; a link planted by another
    user in a sticky world-writable directory (/tmp) is refused, as the
    kernel's protected_symlinks refuses to follow it. A device or FIFO
    (/dev/null, /dev/stdout) is written into, not replaced."""
    if isinstance(dest, (str, os.PathLike)):
        _atomic_write(os.fspath(dest), data)
    else:
        dest.write(data)


_MAX_LINKS = 40  # as Linux's ELOOP limit


def _check_link(link: str, st: os.stat_result) -> None:
    """Refuse to follow a link that the kernel's protected_symlinks would not
    let open() follow: in a sticky world-writable directory, owned neither by
    this process's user nor by the directory's owner."""
    parent = os.stat(os.path.dirname(link))
    shared = parent.st_mode & stat.S_ISVTX and parent.st_mode & stat.S_IWOTH
    if shared and st.st_uid not in (os.geteuid(), parent.st_uid):
        raise PermissionError(errno.EACCES, f"{link} is a symbolic link another user made in a "
                              f"shared directory: not following it; remove it or write elsewhere",
                              link)


def output_target(path: str) -> str:
    """The file a write to ``path`` makes or replaces: ``path`` itself, or
    the final target of the symbolic link at ``path``."""
    current = os.path.abspath(path)
    for _ in range(_MAX_LINKS):
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return current
        if not stat.S_ISLNK(st.st_mode):
            return current
        _check_link(current, st)
        current = os.path.join(os.path.dirname(current), os.readlink(current))
    raise OSError(errno.ELOOP, "too many levels of symbolic links", path)


def check_writable(path: str) -> None:
    """Raise OSError, saying why in one line, if ``write_bytes(path, ...)``
    would fail: a directory, a file or directory this user cannot write, a
    directory that does not exist. Checked by writing and removing a
    temporary file where the profile would go (so a read-only or special
    file system is found too)."""
    if path.endswith(os.sep) or os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"{path} is a directory: give a file name", path)
    target = output_target(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, f"{path} is not writable: make it writable or "
                              f"write elsewhere", path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        return  # a device or FIFO is written into
    directory = os.path.dirname(target)
    try:
        fd, tmp = _temporary(directory)
    except OSError as e:
        raise type(e)(e.errno, f"cannot write {path}: {directory} is not a writable directory "
                      f"({e.strerror})", path) from None
    os.close(fd)
    os.unlink(tmp)


def _temporary(directory: str) -> tuple[int, str]:
    """A new empty file in ``directory``, created with mode 0666 for the
    kernel to apply the umask, as open() does (mkstemp's 0600 would not)."""
    for _ in range(100):
        # os.urandom is what secrets.token_hex reads; importing secrets would
        # bring hashlib and hmac into every command's start-up (~2 ms).
        name = os.path.join(directory, f".cprof-{os.urandom(8).hex()}.tmp")
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        return fd, name
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", directory)


def _keep_owner_and_mode(fd: int, old: os.stat_result) -> None:
    """Give the new file the replaced file's owner (where allowed) and mode."""
    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except OSError:
            pass  # only root may give a file away: it is this user's then
    os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o777)


def _atomic_write(path: str, data: bytes) -> None:
    target = output_target(path)
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode) and not stat.S_ISDIR(old.st_mode):
        with open(target, "wb") as f:  # /dev/null, a FIFO: never replaced
            f.write(data)
        return
    fd, tmp = _temporary(os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as f:
            if old is not None:
                _keep_owner_and_mode(f.fileno(), old)
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
