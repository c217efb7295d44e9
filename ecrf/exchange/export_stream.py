"""Exports streamed as they are written (the web page's download and the API): the same writers as
the command line, writing into a ZIP (ODM: the XML itself) whose bytes are handed to the response in
chunks while the export runs. Nothing is staged on the server and memory stays flat.

The writers push bytes; a response pulls them. ``stream_export`` runs the writer in a greenlet (in the
consumer's thread and context, with a database session of its own) that switches back with each chunk of
about ``CHUNK`` bytes, so the export advances only as fast as the client reads.

The ZIP is written to a non-seekable stream (``zipfile`` then puts each member's sizes and CRC in a
data descriptor after its data). A ZIP allows one member written at a time, so when a writer has
several files open together (a form and its repeating groups), the first streams straight into the
archive and the others are spooled (in memory up to ``SPOOL`` bytes, then in a temporary file) and
copied in when it closes. ``manifest.json``, with every other member's row count and SHA-256, is the
last member: a client checks a download against it.

A streamed response has already answered 200, so a failure midway cannot become an error status:
the stream stops without the ZIP's central directory (or the XML's closing tags), which a client sees
as a truncated transfer and a broken file. The audit event is appended only when the whole export
has been written, before its last chunk is sent; an export that fails, or that the client stops
reading, records nothing.
"""
import contextlib
import contextvars
import dataclasses
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import greenlet

from ecrf.exchange import export_service as service
from ecrf.models import Study

#: Bytes handed to the response at a time.
CHUNK = 1 << 16
#: Bytes of a spooled member (a repeating group's file) kept in memory before it goes to disk.
SPOOL = 1 << 20


class _Aborted(Exception):
    """The client stopped reading: unwind the export."""


class _Pipe:
    """A write-only, non-seekable file whose bytes go to the consumer ``CHUNK`` at a time."""

    def __init__(self, consumer):
        self.consumer = consumer
        self.buffer = bytearray()
        self.broken = False

    def write(self, data):
        if self.broken:  # a failed or abandoned export: nothing more reaches the client
            return len(data)
        self.buffer += data
        if len(self.buffer) >= CHUNK:
            self.drain()
        return len(data)

    def drain(self):
        if self.buffer and not self.broken:
            chunk = bytes(self.buffer)
            self.buffer.clear()
            self.consumer.switch(chunk)

    def flush(self):
        pass


class _File:
    """What a writer gets from a sink's ``open``: ``write``, then ``close`` (or a ``with`` block)."""

    def flush(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()


class _Unclosed(_File):
    """The pipe as the one file of an ODM export (closing it leaves the pipe open)."""

    def __init__(self, pipe):
        self.pipe = pipe

    def write(self, data):
        return self.pipe.write(data)


class _StreamFile:
    """The ODM export's sink: its one file is the response."""

    def __init__(self, pipe, name):
        self.pipe, self.name = pipe, name

    def open(self, _name=None):
        return _Unclosed(self.pipe)


class _Spooled(_File):
    """A member written while another is being written: kept aside, added when it can be."""

    def __init__(self, sink, name):
        self.sink, self.name = sink, name
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL)
        self.closed = False

    def write(self, data):
        return self.file.write(data)

    def close(self):
        if not self.closed:
            self.closed = True
            self.sink._finished(self)


class ZipSink:
    """Files of a folder export written as members ``<prefix>/<name>`` of a streamed ZIP (the
    methods of ``export_service.FolderSink``)."""

    def __init__(self, archive, prefix):
        self.archive, self.prefix = archive, prefix
        self.current = None      # the member being written into the archive
        self.waiting = []        # spooled members, in the order they were opened

    def _member(self, name):
        info = zipfile.ZipInfo(f"{self.prefix}/{name}", time.gmtime()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        return self.archive.open(info, "w", force_zip64=True)  # sizes unknown until written

    def open(self, name):
        if self.current is None:
            self.current = _Direct(self, self._member(name))
            return self.current
        spooled = _Spooled(self, name)
        self.waiting.append(spooled)
        return spooled

    def _finished(self, member):
        if member is self.current:
            self.current = None
        while self.current is None and self.waiting and self.waiting[0].closed:
            spooled = self.waiting.pop(0)
            spooled.file.seek(0)
            with spooled.file, self._member(spooled.name) as out:
                shutil.copyfileobj(spooled.file, out, CHUNK)

    @contextlib.contextmanager
    def local_path(self, name):
        """A temporary file for a library that writes only to a path; added to the ZIP after."""
        folder = Path(tempfile.mkdtemp(prefix="ecrf-export-"))
        try:
            path = folder / name
            yield path
            with path.open("rb") as source, self.open(name) as out:
                shutil.copyfileobj(source, out, CHUNK)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def write_manifest(self, document):
        with self.open("manifest.json") as out:
            out.write(service.manifest_bytes(document))


class _Direct(_File):
    """The member being written straight into the archive."""

    def __init__(self, sink, member):
        self.sink, self.member = sink, member

    def write(self, data):
        return self.member.write(data)

    def close(self):
        if self.sink.current is self:
            self.member.close()
            self.sink._finished(self)


def stream_export(sessions, actor, scope, fmt, **options):
    """The export of ``scope`` as ``fmt``, as an iterator of bytes produced while it is written: a
    ZIP of the folder formats' files (members ``<study>-<fmt>/<file>``), or the ODM XML.

    The iterator opens its own session from ``sessions`` (a request's session is closed when the
    view returns, before the response is read) and reads one snapshot through it until it ends. The
    audit event is appended once everything is written, before the last chunk; a failure raises out
    of the iterator after the bytes already sent, and closing the iterator early abandons the export.
    Either way nothing is recorded."""
    writer = service.writer_for(fmt)  # an unknown format or a missing extra fails before any byte
    return _chunks(sessions, actor, scope, scope.study.id, fmt, writer, options)


def _chunks(sessions, actor, scope, study_id, fmt, writer, options):
    with sessions() as session:
        scope = dataclasses.replace(scope, study=session.get(Study, study_id))
        yield from _produced(session, actor, scope, fmt, writer, options)


def _produced(session, actor, scope, fmt, writer, options):
    consumer = greenlet.getcurrent()
    pipe = _Pipe(consumer)

    def produce():
        try:
            with service.snapshot(session):
                if service.FORMATS[fmt] == "file":
                    document = writer(session, scope, _StreamFile(pipe, f"{scope.study.key}.xml"), actor=actor,
                                      fmt=fmt, **options)
                else:
                    archive = zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED)
                    document = writer(session, scope, ZipSink(archive, f"{scope.study.key}-{fmt}"),
                                      actor=actor, fmt=fmt, **options)
                    archive.close()  # never on an error: a failed export has no central directory
        except BaseException:
            pipe.broken = True
            raise
        service.record_export(session, actor, scope, fmt, document["rows"], service.manifest_hash(document))
        return None

    worker = greenlet.greenlet(produce, parent=consumer)
    worker.gr_context = contextvars.copy_context()
    chunk = worker.switch()
    try:
        while not worker.dead:
            yield chunk
            chunk = worker.switch()
    except GeneratorExit:
        if not worker.dead:
            pipe.broken = True
            with contextlib.suppress(_Aborted):
                worker.throw(_Aborted())
        raise
    if pipe.buffer:
        yield bytes(pipe.buffer)
