"""A stand-in IMAP4rev1 server on 127.0.0.1 for the ``bounces poll`` tests: one user, one
folder, messages with a \\Seen flag. It speaks only what imaplib and the poller use:
CAPABILITY, LOGIN, SELECT, UID SEARCH UNSEEN, UID FETCH (BODY.PEEK[] or RFC822),
UID STORE +FLAGS (\\Seen), NOOP, LOGOUT. Not a real mail server."""

from __future__ import annotations

import re
import socketserver
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.support.live_server import free_port


@dataclass
class StoredMessage:
    uid: int
    data: bytes
    seen: bool = False


@dataclass
class Mailbox:
    user: str = "bounces"
    password: str = "secret"
    folder: str = "INBOX"
    messages: list[StoredMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fetched: int = 0  # how many FETCH commands were answered

    def add(self, data: bytes) -> None:
        with self.lock:
            self.messages.append(StoredMessage(len(self.messages) + 1, data))


class _Session(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        box = self.server.mailbox
        self._send(b"* OK [CAPABILITY IMAP4rev1] stand-in ready")
        authenticated = False
        while True:
            line = self.rfile.readline()
            if not line:
                return
            tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            if command == "CAPABILITY":
                self._send(b"* CAPABILITY IMAP4rev1")
            elif command == "NOOP":
                pass
            elif command == "LOGOUT":
                self._send(b"* BYE logging out")
                self._send(f"{tag} OK LOGOUT completed".encode())
                return
            elif command == "LOGIN":
                user, password = (a.strip('"') for a in args.split(" ", 1))
                if (user, password) != (box.user, box.password):
                    self._send(f"{tag} NO [AUTHENTICATIONFAILED] bad login".encode())
                    continue
                authenticated = True
            elif not authenticated:
                self._send(f"{tag} BAD log in first".encode())
                continue
            elif command == "SELECT":
                if args.strip('"') != box.folder:
                    self._send(f"{tag} NO no such folder".encode())
                    continue
                self._send(f"* {len(box.messages)} EXISTS".encode())
                self._send(b"* OK [UIDVALIDITY 1] UIDs valid")
                self._send(f"{tag} OK [READ-WRITE] SELECT completed".encode())
                continue
            elif command == "UID":
                if not self._uid(tag, args, box):
                    continue
            else:
                self._send(f"{tag} BAD unknown command".encode())
                continue
            self._send(f"{tag} OK {command} completed".encode())

    def _uid(self, tag: str, args: str, box: Mailbox) -> bool:
        sub, _, rest = args.partition(" ")
        sub = sub.upper()
        with box.lock:
            if sub == "SEARCH" and rest.upper() == "UNSEEN":
                uids = " ".join(str(m.uid) for m in box.messages if not m.seen)
                self._send(f"* SEARCH {uids}".rstrip().encode())
                return True
            found = re.fullmatch(r"(\d+) (.*)", rest)
            if found is None:
                self._send(f"{tag} BAD bad UID arguments".encode())
                return False
            uid, what = int(found.group(1)), found.group(2)
            message = next((m for m in box.messages if m.uid == uid), None)
            if message is None:
                return True  # no such message: an empty OK, as real servers answer
            seq = box.messages.index(message) + 1
            if sub == "FETCH" and what.upper() in ("(BODY.PEEK[])", "(RFC822)"):
                if what.upper() == "(RFC822)":
                    message.seen = True  # RFC822 sets \Seen, BODY.PEEK does not
                item = "RFC822" if "RFC822" in what.upper() else "BODY[]"
                head = f"* {seq} FETCH (UID {uid} {item} {{{len(message.data)}}}\r\n"
                self.wfile.write(head.encode() + message.data + b")\r\n")
                box.fetched += 1
                return True
            if sub == "STORE" and what.upper().replace(" ", "") == "+FLAGS(\\SEEN)":
                message.seen = True
                self._send(f"* {seq} FETCH (UID {uid} FLAGS (\\Seen))".encode())
                return True
        self._send(f"{tag} BAD unsupported UID {sub}".encode())
        return False

    def _send(self, line: bytes) -> None:
        self.wfile.write(line + b"\r\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    mailbox: Mailbox


class ImapServer:
    """``with ImapServer() as imap: imap.url``; messages go in with ``imap.mailbox.add``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mailbox = Mailbox()
        self._server = _Server(("127.0.0.1", self.port), _Session)
        self._server.mailbox = self.mailbox
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        box = self.mailbox
        return f"imap://{box.user}:{box.password}@127.0.0.1:{self.port}/{box.folder}"

    def __enter__(self) -> ImapServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
