"""Which inputs a job may read: the one URI policy for videos, product images, ingest and the quality gate.

A location is allowed when

* its scheme is one of ``allowed_schemes`` (a plain path is scheme ``file``; ``None`` allows local files only);
  a ``file://`` URI names no host other than ``localhost`` (``file://HOST/path`` is another machine's file),
* it lies under one of ``allowed_roots`` (absolute folders or URI prefixes; ``None`` allows any location).
  A local path is compared after resolving ``~``, ``..`` and symbolic links (``os.path.realpath``); a
  remote URI by prefix, and one with a ``..`` segment (plain or percent-encoded) is never under a root,

and, when it is to be read, a local file exists. Every refusal is a
:class:`pe_udfs.errors.PEInputError` (``FetchError`` by default) with reason ``not_found``,
``scheme_not_allowed``, ``file_host_not_allowed``, ``outside_allowed_roots`` or ``fetch_failed``.

    uri ─► resolve_uri (scheme, roots[, exists]) ─► open_binary: local path | fsspec / pyarrow file object
"""
from __future__ import annotations

import os
import urllib.parse
from contextlib import contextmanager
from typing import IO, Iterator, Sequence

from pe_udfs.errors import FetchError, PEInputError

# Lazy imports here are deliberate: fsspec and pyarrow.fs load only when a remote URI is opened.


def resolve_uri(uri: str, *, allowed_schemes: Sequence[str] | None = None,
                allowed_roots: Sequence[str] | None = None, error_cls: type[PEInputError] = FetchError,
                must_exist: bool = True) -> tuple[str, str]:
    """Check ``uri`` against the policy; return ``(scheme, location)``.

    A plain path or ``file://`` URI gives ``("file", absolute real path)``; any other scheme gives
    ``(scheme, uri)``. ``must_exist``: a local file must exist (reason ``not_found``) — off for checks of
    a table's URIs, whose files are only looked for when a job reads them."""
    if not isinstance(uri, str) or not uri.strip():
        raise error_cls("not_found", f"empty input location {uri!r}", uri=str(uri))
    schemes = {s.lower() for s in (allowed_schemes if allowed_schemes is not None else ["file"])}
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.lower() if "://" in uri else "file"
    if scheme not in schemes:
        raise error_cls("scheme_not_allowed",
                        f"{uri}: scheme '{scheme}' is not allowed (allowed: {', '.join(sorted(schemes))})", uri=uri)
    if scheme == "file" and "://" in uri and parsed.netloc.lower() not in ("", "localhost"):
        # file://HOST/path names a file on another machine; reading the local /path instead would be wrong
        raise error_cls("file_host_not_allowed",
                        f"{uri}: a file URI with a host ('{parsed.netloc}') names another machine's file; local "
                        f"files are file:///path or file://localhost/path", uri=uri)
    if scheme == "file":
        path = urllib.parse.unquote(parsed.path) if "://" in uri else uri
        location = os.path.realpath(os.path.expanduser(path))
    else:
        location = uri
    if allowed_roots is not None and not _inside_roots(scheme, location, allowed_roots):
        raise error_cls("outside_allowed_roots",
                        f"{uri} is outside the allowed roots ({', '.join(allowed_roots) or 'none'})", uri=uri)
    if must_exist and scheme == "file" and not os.path.isfile(location):
        raise error_cls("not_found", f"{uri} {_why_not_a_file(location, parsed if '://' in uri else None)}", uri=uri)
    return scheme, location


def _why_not_a_file(location: str, parsed: urllib.parse.ParseResult | None) -> str:
    """The end of a 'not found' message: what is at ``location`` instead of a regular file."""
    if os.path.isdir(location):
        return "is a folder, not a file"
    if os.path.exists(location):  # a device (/dev/zero), pipe or socket: reading it never ends or blocks
        return "is not a regular file (a device, pipe or socket)"
    if parsed is not None and (parsed.fragment or parsed.query):
        cut = "#" + parsed.fragment if parsed.fragment else "?" + parsed.query
        return (f"does not exist: in a URI, '{cut[0]}' starts a {'fragment' if cut[0] == '#' else 'query'}, so "
                f"'{cut}' is not part of the path; percent-encode '#' as %23 and '?' as %3F in file names "
                f"(or give a plain path)")
    return "does not exist"


def policy_violation(uri: str | None, *, allowed_schemes: Sequence[str] | None = None,
                     allowed_roots: Sequence[str] | None = None) -> str | None:
    """The reason ``uri`` breaks the policy ('scheme_not_allowed', 'outside_allowed_roots', 'not_found' for
    an empty one), None when it is allowed (existence is not checked) or missing (None/NaN)."""
    if uri is None or (isinstance(uri, float) and uri != uri):
        return None
    try:
        resolve_uri(uri, allowed_schemes=allowed_schemes, allowed_roots=allowed_roots, must_exist=False)
    except PEInputError as e:
        return e.reason
    return None


def _inside_roots(scheme: str, location: str, roots: Sequence[str]) -> bool:
    if scheme != "file" and _has_parent_segment(location):
        return False
    for root in roots:
        if scheme == "file":
            if "://" in root:
                if not root.lower().startswith("file://"):
                    continue
                root = urllib.parse.unquote(urllib.parse.urlparse(root).path)
            r = os.path.realpath(os.path.expanduser(root))
            if location == r or location.startswith(r.rstrip(os.sep) + os.sep):
                return True
        else:
            r = root.rstrip("/")
            if location == r or location.startswith(r + "/"):
                return True
    return False


def _has_parent_segment(uri: str) -> bool:
    path = urllib.parse.urlparse(uri).path
    return any(urllib.parse.unquote(part) == ".." for part in path.split("/"))


@contextmanager
def open_binary(uri: str, *, allowed_schemes: Sequence[str] | None = None,
                allowed_roots: Sequence[str] | None = None,
                error_cls: type[PEInputError] = FetchError) -> Iterator[tuple[str | IO[bytes], int | None]]:
    """Yield ``(path_or_file, size_bytes | None)`` for ``uri`` after :func:`resolve_uri` checks.

    Local files are yielded as paths (PyAV and OpenCV read them directly); other schemes as a binary
    file object from fsspec, or from ``pyarrow.fs`` when fsspec does not know the scheme."""
    scheme, location = resolve_uri(uri, allowed_schemes=allowed_schemes, allowed_roots=allowed_roots,
                                   error_cls=error_cls)
    if scheme == "file":
        try:
            size = os.path.getsize(location)
        except OSError as e:
            raise error_cls("not_found", f"{uri}: {e.strerror}", uri=uri) from e
        if not os.access(location, os.R_OK):
            raise error_cls("fetch_failed", f"{uri}: permission denied", uri=uri)
        yield location, size
        return
    handle = _open_remote(uri, error_cls)
    try:
        remote_size = getattr(handle, "size", None)
        yield handle, (remote_size() if callable(remote_size) else remote_size)
    finally:
        handle.close()


def _open_remote(uri: str, error_cls: type[PEInputError]) -> IO[bytes]:
    try:
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        if not fs.exists(path):
            raise error_cls("not_found", f"{uri} does not exist", uri=uri)
        return fs.open(path, "rb")
    except PEInputError:
        raise
    except (ImportError, ValueError) as fsspec_error:  # unknown protocol or its driver is not installed
        try:
            import pyarrow.fs as pafs

            fs, path = pafs.FileSystem.from_uri(uri)
            info = fs.get_file_info(path)
            if info.type != pafs.FileType.File:
                raise error_cls("not_found", f"{uri} does not exist", uri=uri)
            return fs.open_input_file(path)
        except PEInputError:
            raise
        except Exception as e:
            raise error_cls("fetch_failed", f"{uri}: no filesystem can open it ({fsspec_error}; {e})", uri=uri) from e
    except OSError as e:
        raise error_cls("fetch_failed", f"{uri}: {e}", uri=uri) from e
