"""The bot's subscriber session: paho-mqtt driven from the asyncio loop, reading in batches.

Every wheel reading is one QoS 1 message, so at 1,000 homes the bot receives 1,000 messages a
second, each arriving on its own. Through aiomqtt each one cost a wake-up of the loop, three or
four ``recv`` calls (paho reads one packet per ``loop_read``), and a PUBACK of its own, sent
through a writer registered via ``call_soon_threadsafe`` (a write to the loop's self-pipe, an extra
loop iteration) and removed again. That, not the bot's decoding and counting, was most of its CPU.

This session drives paho itself and reads in batches. While readings flow it reads every
``READ_WINDOW``: every packet that is there (at most ``READ_BATCH``), each message handed to
``on_message``, then all their PUBACKs in one ``send``. When a read finds nothing it goes back to
watching the socket, and the first message after a quiet spell is read at once. A message is
acknowledged only after ``on_message`` returned, as before, so delivery stays at-least-once.

paho's public API is all it uses: the external loop (``loop_read``/``loop_write``/``loop_misc`` and
the socket callbacks) and manual acknowledgement (``manual_ack_set``). The one thing it writes
itself is the PUBACK (four bytes: MQTT 3.1.1 section 3.4), and only onto a plain socket with
nothing of paho's waiting to go out; paho's own ``ack`` per message (its queue, one ``send`` each)
serves TLS. paho is imported when a session is made, so a bot without MQTT never loads it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from paho.mqtt.client import Client, MQTTMessage

log = logging.getLogger(__name__)

# How long readings gather between two reads while they flow. A reading lands in a minute bucket
# and on a page refreshed every few seconds, so 15 ms of delay is invisible; at 1,000 readings a
# second it makes ~15 messages per wake-up and one PUBACK write for them. It must stay short
# enough for the broker's in-flight limit: the broker sends at most that many unacknowledged
# messages (Mosquitto's default is 20) and then waits for our PUBACKs, so reads every 15 ms take
# up to ~1,300 a second before the catch-up below is needed.
READ_WINDOW = 0.015
# At most this many packets in one read before the loop runs other work (a few ms); a read cut
# short goes on at the loop's next turn.
READ_BATCH = 200
# A read that found this many messages may have found the broker's in-flight limit full (it holds
# the rest until it has our PUBACKs): read again after CATCH_UP_WINDOW instead of the full window,
# so a backlog (a bot back from a restart, a broker back from an outage) drains at full speed.
BACKLOG = 16
CATCH_UP_WINDOW = 0.001
# paho's keepalive check (sends PINGREQ, notices a silent broker) runs this often.
MISC_INTERVAL = 1.0


_PUBACK = struct.Struct(">BBH")  # MQTT 3.1.1 section 3.4: 0x40, remaining length 2, packet id


class BrokerError(Exception):
    """A connection that failed, was refused or was lost; ``rc`` is the broker's or paho's code."""

    def __init__(self, text: str, rc: Any = None) -> None:
        super().__init__(text)
        self.rc = rc


class SessionSettings(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def tls(self) -> bool: ...

    @property
    def username(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...


class Session:
    """One connection: ``run`` connects, subscribes, feeds ``on_message(topic, payload)`` until the
    connection drops (raises BrokerError) or the task is cancelled (disconnects)."""

    def __init__(
        self,
        settings: SessionSettings,
        *,
        client_id: str,
        clean_session: bool,
        on_message: Callable[[str, bytes], None],
        keepalive: int = 30,
        window: float = READ_WINDOW,
        batch: int = READ_BATCH,
    ) -> None:
        import paho.mqtt.client as mqtt  # lazy: only a bot that uses MQTT loads it

        self.settings = settings
        self.on_message = on_message
        self.keepalive = keepalive
        self.window = window
        self.batch = batch
        self.messages = 0  # handed to on_message
        self.batches = 0  # reads of the socket that found messages
        self.full_batches = 0  # reads cut short at ``batch`` packets (more was waiting)
        self._mqtt = mqtt
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        client.enable_logger(logging.getLogger("sensors.mqtt.paho"))
        if settings.username:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            client.tls_set_context(ssl.create_default_context())
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_paho_message
        client.manual_ack_set(True)  # PUBACKs are ours to send, a read's worth at a time
        self._acks: list[int] = []  # QoS 1 messages handled in this read, to acknowledge
        self._client: Client = client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: Any = None
        self._fd = -1
        self._plain = False  # a plain TCP socket (not TLS): PUBACKs can be written straight to it
        self._watching = False  # the loop's reader is on the socket
        self._writing = False  # the loop's writer is on the socket (the send buffer was full)
        self._draining = False
        self._flush_due = False
        self._pending_read: asyncio.Handle | asyncio.TimerHandle | None = None
        self._pending_flush: asyncio.Handle | None = None
        self._misc: asyncio.TimerHandle | None = None
        self._connack: asyncio.Future[None] | None = None
        self._subacks: dict[int, asyncio.Future[None]] = {}
        self._ended: asyncio.Future[None] | None = None

    async def run(self, topics: list[str], on_subscribed: Callable[[], None]) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        self._ended = loop.create_future()
        try:
            await self._connect()
            await self._until(self._connack)
            if topics:
                rc, mid = self._client.subscribe([(topic, 1) for topic in topics])
                if rc != self._mqtt.MQTT_ERR_SUCCESS or mid is None:
                    raise BrokerError(f"could not subscribe ({self._mqtt.error_string(rc)})", rc)
                suback = self._subacks[mid] = loop.create_future()
                await self._until(suback)
            on_subscribed()
            await self._until(loop.create_future())  # until the connection ends
        finally:
            self._close()

    # --- connecting and closing -------------------------------------------------------------

    async def _connect(self) -> None:
        # paho's connect resolves, connects and does the TLS handshake blocking: in a thread, as
        # aiomqtt does. No socket callback is set yet, so paho sends CONNECT itself.
        settings, client = self.settings, self._client
        connecting = asyncio.ensure_future(
            asyncio.to_thread(client.connect, settings.host, settings.port, self.keepalive)
        )
        try:
            await asyncio.shield(connecting)
        except asyncio.CancelledError:
            # The thread runs on: close the socket it opens, not the garbage collector.
            connecting.add_done_callback(_close_when_connected(client))
            raise
        except (OSError, ValueError) as err:
            raise BrokerError(str(err) or type(err).__name__) from None
        sock = client.socket()
        if sock is None:
            raise BrokerError("connection lost")
        assert self._loop is not None
        self._sock, self._fd = sock, sock.fileno()
        self._plain = type(sock) is socket.socket
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self._watch()
        self._misc = self._loop.call_later(MISC_INTERVAL, self._keepalive)
        if client.want_write():  # CONNECT did not fit at once
            self._flush()

    async def _until(self, future: asyncio.Future[None]) -> None:
        """Wait for ``future``; raise the BrokerError if the connection ends first."""
        assert self._ended is not None
        if not future.done():
            await asyncio.wait({future, self._ended}, return_when=asyncio.FIRST_COMPLETED)
        if future.done():
            future.result()
        else:
            self._ended.result()

    def _end(self, error: BaseException) -> None:
        if self._ended is not None and not self._ended.done():
            self._ended.set_exception(error)
            self._ended.exception()  # retrieved: nobody may be waiting any more

    def _close(self) -> None:
        """Stop watching, say DISCONNECT if still connected (best effort), close the socket."""
        for handle in (self._pending_read, self._pending_flush, self._misc):
            if handle is not None:
                handle.cancel()
        self._pending_read = self._pending_flush = self._misc = None
        client, sock = self._client, self._sock
        if sock is not None and self._fd >= 0 and client.socket() is sock:
            try:
                client.disconnect()
                client.loop_write()  # sends DISCONNECT; paho then closes the socket
            except Exception as err:  # going away anyway
                log.debug("MQTT: no clean disconnect: %s", err)
        if self._pending_flush is not None:  # the DISCONNECT's, already sent or moot
            self._pending_flush.cancel()
            self._pending_flush = None
        self._forget_socket()
        if sock is not None:
            sock.close()
        for future in (self._connack, *self._subacks.values()):
            if future is not None and not future.done():
                future.cancel()
        self._subacks.clear()

    def _forget_socket(self) -> None:
        loop = self._loop
        if loop is not None and self._fd >= 0:
            if self._watching:
                loop.remove_reader(self._fd)
            if self._writing:
                loop.remove_writer(self._fd)
        self._watching = self._writing = False
        self._fd = -1

    # --- reading in batches -----------------------------------------------------------------

    def _watch(self) -> None:
        assert self._loop is not None
        if self._fd >= 0 and not self._watching:
            self._loop.add_reader(self._fd, self._on_readable)
            self._watching = True

    def _on_readable(self) -> None:
        """Quiet until now: read at once, then let the next readings gather (``_read``)."""
        assert self._loop is not None
        self._loop.remove_reader(self._fd)
        self._watching = False
        self._read()

    def _on_timer(self) -> None:
        self._pending_read = None
        self._read()

    def _read(self) -> None:
        """Read every packet that is there (at most ``batch``), PUBACK them all at once, and
        decide when to read next."""
        assert self._loop is not None
        client, mqtt = self._client, self._mqtt
        pending = getattr(self._sock, "pending", None)  # TLS: bytes already decrypted
        start = self.messages
        full = True
        self._draining = True
        try:
            for _ in range(self.batch):
                before = self.messages
                rc = client.loop_read()
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    self._end(BrokerError(f"connection lost ({mqtt.error_string(rc)})", rc))
                    return
                if self.messages == before and not (pending and pending()):
                    full = False
                    break
        except Exception as err:  # paho raised: the connection is not usable
            self._end(BrokerError(f"connection lost ({err})"))
            return
        finally:
            self._draining = False
        got = self.messages - start
        if got:
            self.batches += 1
        if self._acks:
            self._send_acks()
        if self._flush_due:
            self._flush()
        if self._fd < 0:  # closed meanwhile (paho saw the connection end)
            return
        if full:  # more is waiting: read on after whatever else the loop has to do
            self.full_batches += 1
            self._pending_read = self._loop.call_soon(self._on_timer)
        elif got >= BACKLOG:  # the broker may be holding more until it has our PUBACKs
            self._pending_read = self._loop.call_later(CATCH_UP_WINDOW, self._on_timer)
        elif got:  # readings are flowing: let the next ones gather
            self._pending_read = self._loop.call_later(self.window, self._on_timer)
        else:  # quiet: wait for the socket
            self._watch()

    # --- writing ----------------------------------------------------------------------------

    def _on_register_write(self, client: Client, userdata: Any, sock: Any) -> None:
        """paho queued a packet (a PUBACK, PINGREQ, SUBSCRIBE): send it after the batch."""
        self._flush_due = True
        if not self._draining and self._pending_flush is None and self._loop is not None:
            self._pending_flush = self._loop.call_soon(self._flush)

    def _on_unregister_write(self, client: Client, userdata: Any, sock: Any) -> None:
        if self._writing and self._loop is not None and self._fd >= 0:
            self._loop.remove_writer(self._fd)
        self._writing = False

    def _send_acks(self) -> None:
        """The PUBACKs of every message this read handled: one ``send`` of 4 bytes each.

        Only onto a plain socket with nothing of paho's waiting to go out, so no packet can be cut
        into; otherwise (TLS, or paho mid-packet) through paho's own queue. A kernel that will not
        take them all means a broker that is not reading: the connection is dropped, and whatever
        was not acknowledged comes again after the reconnect (and is dropped as a redelivery).
        """
        acks, self._acks = self._acks, []
        client, sock = self._client, self._sock
        if not self._plain or client.want_write():
            self._draining = True  # one loop_write for them all, by the caller
            try:
                for mid in acks:
                    client.ack(mid, 1)
            finally:
                self._draining = False
            return
        data = b"".join([_PUBACK.pack(0x40, 2, mid) for mid in acks])
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as err:
            self._lost(f"connection lost ({err})")
            return
        if sent != len(data):  # part of a PUBACK may be out: nothing more can go after it
            self._lost("connection lost (the broker stopped reading)")

    def _lost(self, text: str) -> None:
        """Stop using the socket at once; ``run`` closes it."""
        self._forget_socket()
        self._end(BrokerError(text))

    def _flush(self) -> None:
        self._pending_flush = None
        self._flush_due = False
        if self._fd < 0:
            return
        try:
            rc = self._client.loop_write()
        except Exception as err:
            self._end(BrokerError(f"connection lost ({err})"))
            return
        if rc != self._mqtt.MQTT_ERR_SUCCESS:
            self._end(BrokerError(f"connection lost ({self._mqtt.error_string(rc)})", rc))
            return
        if self._client.want_write() and not self._writing and self._fd >= 0:
            assert self._loop is not None
            self._loop.add_writer(self._fd, self._flush)  # the send buffer is full: wait for room
            self._writing = True

    def _keepalive(self) -> None:
        assert self._loop is not None
        self._misc = None
        if self._client.loop_misc() != self._mqtt.MQTT_ERR_SUCCESS:
            self._end(BrokerError("the broker stopped answering (keepalive)"))
            return
        self._misc = self._loop.call_later(MISC_INTERVAL, self._keepalive)

    # --- paho's callbacks (all called inside the loop, from the calls above) -----------------

    def _on_socket_close(self, client: Client, userdata: Any, sock: Any) -> None:
        self._forget_socket()
        self._end(BrokerError("connection lost"))

    def _on_connect(
        self, client: Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        future = self._connack
        if future is None or future.done():
            return
        if reason.is_failure:
            future.set_exception(BrokerError(f"connection refused: {reason}", reason))
        else:
            future.set_result(None)

    def _on_disconnect(
        self, client: Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._end(BrokerError(f"connection lost ({reason})", reason))

    def _on_subscribe(
        self, client: Client, userdata: Any, mid: int, reasons: list[Any], properties: Any
    ) -> None:
        future = self._subacks.pop(mid, None)
        if future is None or future.done():
            return
        refused = [r for r in reasons if r.is_failure]
        if refused:
            future.set_exception(BrokerError(f"the broker refused a subscription ({refused[0]})"))
        else:
            future.set_result(None)

    def _on_paho_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        self.messages += 1
        self.on_message(message.topic, bytes(message.payload))
        if message.qos == 1:
            self._acks.append(message.mid)
        elif message.qos == 2:  # not with QoS 1 subscriptions, but never left unanswered
            client.ack(message.mid, 2)


def _close_when_connected(client: Client) -> Callable[[asyncio.Future[Any]], None]:
    def close(connecting: asyncio.Future[Any]) -> None:
        if not connecting.cancelled() and connecting.exception() is None:
            sock = client.socket()
            if sock is not None:
                sock.close()

    return close
