"""The persona (``SYSTEM_MESSAGE_PATH``) and knowledge-base (``FAQ_KB_PATH``) files, turned into
instruction text once, at start-up (``config.py``). Pure apart from reading those two files.

Source: the README's variables table and "Conversation features".
"""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_SYSTEM_MESSAGE = (
    "You are a friendly, concise voice assistant speaking with a caller on the telephone. "
    "Keep answers short and natural, one or two sentences, and ask a question when you need "
    "more information."
)
MAX_FAQ_KB_BYTES = 200_000
"""A knowledge file larger than this is refused: it all goes into every session's instructions."""


def read_system_message(path: str) -> str:
    """The persona text at ``path``; a missing or empty file gives the built-in default
    (``Settings.from_env`` warns about a missing one).

    Raises:
        ValueError: if the file exists but cannot be read as UTF-8.
    """
    p = Path(path)
    if not p.is_file():
        return DEFAULT_SYSTEM_MESSAGE
    try:
        return p.read_text(encoding="utf-8").strip() or DEFAULT_SYSTEM_MESSAGE
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc})") from exc


def read_faq_kb(path: str) -> str:
    """The knowledge base at ``path`` as instruction text.

    A ``.json`` file is a list of ``{"question": …, "answer": …}`` objects (``q``/``a`` also
    accepted), rendered as ``Q: …`` / ``A: …`` pairs; any other file is used as plain text.

    Raises:
        ValueError: if the file is missing, unreadable, over 200 kB, or malformed JSON.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError("file not found")
    if p.stat().st_size > MAX_FAQ_KB_BYTES:
        raise ValueError(f"is larger than {MAX_FAQ_KB_BYTES} bytes")
    try:
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc})") from exc
    if p.suffix.lower() != ".json":
        return text
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None
    if not isinstance(doc, list):
        raise ValueError("must be a JSON list of question/answer objects")
    pairs: list[str] = []
    for i, entry in enumerate(doc):
        if not isinstance(entry, dict):
            raise ValueError(f"entry {i} is not an object")
        question = entry.get("question", entry.get("q"))
        answer = entry.get("answer", entry.get("a"))
        if not isinstance(question, str) or not isinstance(answer, str):
            raise ValueError(f"entry {i} needs string 'question' and 'answer'")
        pairs.append(f"Q: {question.strip()}\nA: {answer.strip()}")
    return "\n\n".join(pairs)


def with_faq_kb(system_message: str, faq_kb: str) -> str:
    """The persona with ``{FAQ_KB}`` replaced by the knowledge base; a knowledge base with no
    placeholder to go in is appended under a heading rather than silently dropped."""
    if "{FAQ_KB}" in system_message:
        return system_message.replace("{FAQ_KB}", faq_kb).strip()
    if faq_kb:
        return f"{system_message}\n\nKnowledge base (answer from it when it applies):\n{faq_kb}"
    return system_message
