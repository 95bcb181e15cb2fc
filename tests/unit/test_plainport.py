from registry.plainport import HandshakeLog, is_tls_handshake


def test_a_client_hello_is_recognised_and_http_is_not() -> None:
    assert is_tls_handshake(bytes.fromhex("160301") + b"\x00\xa1")
    assert not is_tls_handshake(b"GET /v2/ HTTP/1.1\r\n")
    assert not is_tls_handshake(b"\x16")


def test_one_line_per_address_per_quiet_period() -> None:
    handshakes = HandshakeLog(quiet=60)
    assert handshakes.should_log("10.0.0.7", now=100.0)
    assert not handshakes.should_log("10.0.0.7", now=100.5)
    assert not handshakes.should_log("10.0.0.7", now=159.9)
    assert handshakes.should_log("10.0.0.8", now=101.0)
    assert handshakes.should_log("10.0.0.7", now=160.0)


def test_the_memory_of_addresses_is_bounded() -> None:
    handshakes = HandshakeLog(quiet=60)
    for i in range(10_000):
        handshakes.should_log(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", now=float(i) / 1000)
    assert len(handshakes._last) <= 4096
