"""De-identification for endpoints outside the hospital (``external``): every message is pseudonymised with
the privacy layer's reversible mode before it leaves, and the reply — text and tool-call arguments — is
mapped back on return. Names, ID numbers, phones and addresses never reach the external model; the key and
the surrogate → original map stay in this process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medfusion.llm.messages import Completion, Message
from medfusion.privacy.pseudonyms import create_key, load_key
from medfusion.privacy.service import ReversibleSession

KEY_FILE = "llm-external.key"


def shield_key(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    return load_key(path) if path.exists() else create_key(path)


class Shield:
    def __init__(self, key: bytes) -> None:
        self.session = ReversibleSession(key)

    def protect(self, messages: list[Message], known_names: Sequence[str] = ()) -> list[Message]:
        return [
            m.model_copy(update={"content": self.session.protect(m.content, known_names)}) for m in messages
        ]

    def restore(self, completion: Completion) -> Completion:
        calls = [
            c.model_copy(update={"arguments": self.session.restore(c.arguments)})
            for c in completion.tool_calls
        ]
        return completion.model_copy(
            update={"text": self.session.restore(completion.text), "tool_calls": calls, "deidentified": True}
        )

    def restore_text(self, text: str) -> str:
        return self.session.restore(text)
