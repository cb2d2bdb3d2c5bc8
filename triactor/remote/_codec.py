"""The wire format: messages as cattrs-unstructured data in msgpack, tagged with their type.

msgpack is written and read by msgspec (measured: about 30x faster than msgpack-python to
encode an envelope and 2x to decode one); cattrs does the (un)structuring, with its hooks
looked up once per type.

An envelope is one msgpack array::

    [version, kind, type tag, data, priority, reply_to, correlation, chain, deadline, sender]

The type tag is ``"module:QualName"`` (empty for plain data: str, int, float, bool, None, bytes
and lists/dicts of them). A node decodes only allow-listed types: those its actors' handlers
take and return, those it sends itself, and those the user lists in ``Cluster(types=...)``.
Never pickle: decoding runs no code but cattrs structuring into an allowed class.
"""

from __future__ import annotations

import enum
import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Any, Final, final

import cattrs
import msgspec

from .._safe import safe_str
from ..actors import Actor, ActorRef

__all__ = [
    "ASK",
    "FAILURE",
    "REPLY",
    "STOP",
    "TELL",
    "Codec",
    "Envelope",
    "Kind",
    "Undecodable",
    "qualified_name",
]

_VERSION: Final = 1
_PLAIN_SCALARS: Final = (str, int, float, bool, type(None), bytes)


class Kind(enum.IntEnum):
    """What an envelope carries."""

    TELL = 0
    ASK = 1
    REPLY = 2
    FAILURE = 3
    STOP = 4


_KINDS: Final = {int(kind): kind for kind in Kind}
# Module-level aliases: an Enum member looked up on its class costs several times a global.
TELL: Final = Kind.TELL
ASK: Final = Kind.ASK
REPLY: Final = Kind.REPLY
FAILURE: Final = Kind.FAILURE
STOP: Final = Kind.STOP


class Undecodable(Exception):
    """An envelope that cannot be decoded; the message says why (never the payload).

    ``correlation`` is the envelope's correlation id when its header could be read (0
    otherwise), so that an asker waiting for an undecodable reply can be told at once.
    """

    correlation = 0


@final
class Envelope:
    """A decoded envelope."""

    __slots__ = (
        "chain",
        "correlation",
        "deadline",
        "kind",
        "message",
        "priority",
        "reply_to",
        "sender",
    )

    def __init__(
        self,
        kind: Kind,
        message: Any,
        priority: int,
        reply_to: str,
        correlation: int,
        chain: tuple[str, ...],
        deadline: float,
        sender: str,
    ) -> None:
        self.kind = kind
        self.message = message
        self.priority = priority
        self.reply_to = reply_to
        self.correlation = correlation
        self.chain = chain
        self.deadline = deadline
        self.sender = sender


def qualified_name(kind: type) -> str:
    """The tag of a type on the wire: ``module:QualName``.

    A class defined in a script is ``__main__:QualName`` there and ``module:QualName`` in a
    process that imports the script's module; :class:`Codec` matches such a pair by the
    qualified name when it is unambiguous.
    """
    return f"{kind.__module__}:{kind.__qualname__}"


def _is_plain(value: object) -> bool:
    if isinstance(value, _PLAIN_SCALARS):
        return True
    if isinstance(value, list | tuple):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _is_ref_type(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, ActorRef)


@final
class Codec:
    """Encodes and decodes envelopes for one node.

    Args:
        node: this node's name (the ``sender`` of what it encodes).
        ref_to_wire: how a ref inside a message is carried (a short list of str).
        ref_from_wire: how such a list becomes a working ref again.
    """

    def __init__(
        self,
        node: str,
        ref_to_wire: Callable[[ActorRef], list[str]],
        ref_from_wire: Callable[[Any], ActorRef],
    ) -> None:
        self.node = node
        self._converter = cattrs.Converter(detailed_validation=False)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder()
        self._unstructure_hooks: dict[type, Callable[[Any], Any]] = {}
        self._structure_hooks: dict[type, Callable[[Any, type], Any]] = {}
        self._converter.register_unstructure_hook_func(_is_ref_type, ref_to_wire)
        self._converter.register_structure_hook_func(
            _is_ref_type, lambda data, _: ref_from_wire(data)
        )
        self._tags: dict[type, str] = {}
        self._types: dict[str, type] = {}
        self._by_qualname: dict[str, type | None] = {}
        self._learned: set[type] = set()

    # -- the allow-list ---------------------------------------------------------------------

    def allow(self, *kinds: type) -> None:
        """Allow ``kinds`` on the wire (plain data is always allowed)."""
        for kind in kinds:
            if kind in _PLAIN_SCALARS or kind in (list, dict, tuple) or kind is type(None):
                continue
            if not isinstance(kind, type) or issubclass(kind, BaseException):
                continue
            tag = qualified_name(kind)
            self._tags[kind] = tag
            self._types[tag] = kind
            # A script's classes are tagged __main__:X there and module:X elsewhere: allow the
            # class by its qualified name too, when no other allowed class has that name.
            short = kind.__qualname__
            self._by_qualname[short] = None if short in self._by_qualname else kind

    def allow_actor_class(self, actor_class: type[Actor]) -> None:
        """Allow every type ``actor_class``'s handlers take, and the classes they return."""
        if actor_class in self._learned:
            return
        self._learned.add(actor_class)
        table = actor_class.__triactor_handlers__
        self.allow(*table.handled_types)
        for entry in table.entries():
            self.allow(*_return_types(entry.fn))

    def allowed(self, tag: str) -> bool:
        """Whether the type tagged ``tag`` may be decoded here."""
        return tag == "" or tag in self._types or self._main_class(tag) is not None

    def _main_class(self, tag: str) -> type | None:
        # A class of a script is tagged __main__:X by the script and module:X by a process
        # that imports it: match such a tag by the qualified name alone, when exactly one
        # allowed class has that name and one side of the pair is __main__.
        module, _, qualname = tag.partition(":")
        candidate = self._by_qualname.get(qualname)
        if candidate is None:
            return None
        if module == "__main__" or self._tags[candidate].startswith("__main__:"):
            return candidate
        return None

    # -- encoding ---------------------------------------------------------------------------

    def encode(
        self,
        kind: Kind,
        message: object,
        *,
        priority: int = 0,
        reply_to: str = "",
        correlation: int = 0,
        chain: tuple[str, ...] = (),
        deadline: float = 0.0,
    ) -> bytes:
        """Encode one envelope.

        Raises:
            TypeError: if ``message`` is not plain data and does not unstructure to plain data
                (the error names the type and what to do).
        """
        cls = message.__class__
        if cls in _PLAIN_SCALARS:
            tag, data = "", message
        else:
            tag_or_none = self._tags.get(cls)
            if tag_or_none is None:
                if _is_plain(message):
                    tag, data = "", message
                    return self._pack(
                        kind, tag, data, priority, reply_to, correlation, chain, deadline
                    )
                self.allow(cls)  # a type this node sends is one it knows
                tag_or_none = self._tags[cls]
            tag = tag_or_none
            try:
                hook = self._unstructure_hooks.get(cls)
                if hook is None:
                    hook = self._unstructure_hooks[cls] = self._converter.get_unstructure_hook(cls)
                data = hook(message)
            except Exception as exc:
                raise TypeError(
                    f"message {cls.__qualname__} cannot be carried to another node ({exc}); "
                    "make messages attrs classes of plain data (no handles, locks or lambdas)"
                ) from exc
        return self._pack(kind, tag, data, priority, reply_to, correlation, chain, deadline)

    def _pack(
        self,
        kind: Kind,
        tag: str,
        data: object,
        priority: int,
        reply_to: str,
        correlation: int,
        chain: tuple[str, ...],
        deadline: float,
    ) -> bytes:
        try:
            packed = self._encoder.encode(
                (
                    _VERSION,
                    int(kind),
                    tag,
                    data,
                    priority,
                    reply_to,
                    correlation,
                    chain,
                    deadline,
                    self.node,
                )
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(
                f"message {tag or type(data).__qualname__} cannot be carried to another node: "
                f"it does not unstructure to plain data ({type(exc).__name__}: "
                f"{str(exc)[:200]}); make messages attrs classes of plain data"
            ) from exc
        return packed

    def encode_failure(
        self,
        error: BaseException,
        *,
        actor: str,
        correlation: int,
        traceback_text: str,
    ) -> bytes:
        """Encode the exception a handler raised, as the reply to an ask."""
        cls = type(error)
        data: dict[str, object] = {
            "type": f"{cls.__module__}.{cls.__qualname__}",
            "message": safe_str(error, limit=4000),
            "actor": actor,
            "node": self.node,
            "traceback": traceback_text,
        }
        cycle = getattr(error, "cycle", None)
        if isinstance(cycle, tuple) and all(isinstance(item, str) for item in cycle):
            data["cycle"] = list(cycle)
        return self._pack(Kind.FAILURE, "", data, 0, "", correlation, (), 0.0)

    # -- decoding ---------------------------------------------------------------------------

    def decode(self, payload: object) -> Envelope:
        """Decode one envelope.

        Raises:
            Undecodable: if the payload is malformed, of another version, or of a type this
                node does not allow; the message says which (never the payload itself).
        """
        if not isinstance(payload, bytes):
            raise Undecodable("the entry has no 'm' field holding an envelope")
        try:
            fields = self._decoder.decode(payload)
        except Exception as exc:
            raise Undecodable(f"not a msgpack envelope ({type(exc).__name__})") from None
        if not isinstance(fields, list) or len(fields) != 10:
            raise Undecodable("not an envelope: expected a 10-item array")
        version, kind, tag, data, priority, reply_to, correlation, chain, deadline, sender = fields
        if version != _VERSION:
            raise Undecodable(f"envelope version {version!r}; this node reads {_VERSION}")
        kind = _KINDS.get(kind) if kind.__class__ is int else None
        if kind is None:
            raise Undecodable(f"unknown envelope kind {fields[1]!r}")
        if not (
            tag.__class__ is str
            and priority.__class__ is int
            and reply_to.__class__ is str
            and correlation.__class__ is int
            and chain.__class__ is list
            and (deadline.__class__ is float or deadline.__class__ is int)
            and sender.__class__ is str
        ) or (chain and not all(item.__class__ is str for item in chain)):
            raise Undecodable("malformed envelope header fields")
        if (kind is ASK or kind is STOP) and not reply_to:
            raise Undecodable(f"{kind.name} envelope without a reply stream")
        if tag:
            cls = self._types.get(tag)
            if cls is None:
                cls = self._main_class(tag)
                if cls is not None:
                    self._types[tag] = cls  # resolved once
            if cls is None:
                error = Undecodable(
                    f"type {tag} is not allowed on this node; it decodes the types its "
                    "actors' handlers take and return: list others in Cluster(types=[...]) "
                    "or pass the actor class to system.remote(name, ActorClass)"
                )
                error.correlation = correlation
                raise error
            try:
                hook = self._structure_hooks.get(cls)
                if hook is None:
                    hook = self._structure_hooks[cls] = self._converter.get_structure_hook(cls)
                message: Any = hook(data, cls)
            except Exception as exc:
                error = Undecodable(
                    f"data does not structure as {tag} ({type(exc).__name__}: "
                    f"{safe_str(exc)[:200]})"
                )
                error.correlation = correlation
                raise error from None
        else:
            if kind is FAILURE and not _is_failure(data):
                raise Undecodable("malformed failure reply")
            message = data
        return Envelope(
            kind,
            message,
            priority,
            reply_to,
            correlation,
            tuple(chain) if chain else (),
            deadline,
            sender,
        )


def _is_failure(data: object) -> bool:
    return isinstance(data, dict) and all(
        isinstance(data.get(key), str) for key in ("type", "message", "actor", "node", "traceback")
    )


def _return_types(fn: Callable[..., Any]) -> Iterable[type]:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        return ()
    annotation = hints.get("return", inspect.Signature.empty)
    found: list[type] = []
    _collect_classes(annotation, found)
    return found


def _collect_classes(annotation: object, found: list[type]) -> None:
    origin = typing.get_origin(annotation)
    if origin is not None:
        for arg in typing.get_args(annotation):
            _collect_classes(arg, found)
        return
    if isinstance(annotation, type):
        found.append(annotation)
