"""No log line carries PII or a secret: the filter masks the message, its arguments, tracebacks and extras."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from deskgate.server.redaction.logfilter import WITHHELD, RedactingFilter, install

CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"
TOKEN = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(who)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("deskgate.test.redaction")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def test_message_arguments_are_masked_before_formatting(logged):
    """%-style arguments are merged and masked; the raw values never reach the stream."""
    logger, stream = logged
    logger.info("refund for %s on card %s", EMAIL, CARD, extra={"who": "agent"})
    out = stream.getvalue()
    assert out == "INFO refund for j***@example.com on card •••• 1111 agent\n"


def test_tracebacks_and_extra_fields_are_masked(logged):
    """An exception message with a secret, and a str `extra` with an email, are masked too."""
    logger, stream = logged
    try:
        raise RuntimeError(f"stripe rejected {TOKEN}")
    except RuntimeError:
        logger.exception("call failed", extra={"who": EMAIL})
    out = stream.getvalue()
    assert TOKEN not in out and EMAIL not in out
    assert "[secret:stripe_key]" in out and "j***@example.com" in out


def test_a_record_that_cannot_be_formatted_is_withheld_not_leaked(logged):
    """A broken format string makes the filter withhold the text rather than pass raw arguments on."""
    logger, stream = logged
    logger.info("bad format %d", EMAIL, extra={"who": "x"})
    assert stream.getvalue() == f"INFO {WITHHELD} x\n"


def test_the_filter_never_drops_records():
    """Filtering is masking, not suppression: every record is still emitted."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "card %s", (CARD,), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == "card •••• 1111"


@pytest.fixture
def installed() -> Iterator[None]:
    """`install()` for one test; the record factory it replaced is put back afterwards."""
    before = logging.getLogRecordFactory()
    install()
    yield
    logging.setLogRecordFactory(before)


def test_once_installed_every_record_is_masked_whatever_handler_writes_it(installed):
    """A handler without the filter (a library's own) still writes the masked line: records are masked as made."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("some.library.of.ours.or.not")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("Invalid Host header: %s", CARD)
        try:
            raise ValueError(f"illegal header value {EMAIL}")
        except ValueError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "Invalid Host header" in text and "request failed" in text and "ValueError" in text
    assert CARD not in text and "4111111111111111" not in text and EMAIL not in text


def test_uvicorns_own_logging_configuration_writes_masked_lines(installed, capsys):
    """uvicorn configures handlers of its own for `uvicorn.error` and `uvicorn.access` (not the root's): their
    lines are masked too, header text included."""
    import logging.config

    from uvicorn.config import LOGGING_CONFIG

    logging.config.dictConfig(LOGGING_CONFIG)
    try:
        logging.getLogger("uvicorn.error").warning("Invalid HTTP request received: X-Card: %s", CARD)
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1", "GET",
                                                 f"/mcp?card={CARD.replace(' ', '')}", "1.1", 400)
    finally:
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).handlers.clear()
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert "Invalid HTTP request received" in text and "GET /mcp?card=" in text
    assert "4111111111111111" not in text and CARD not in text


def test_installing_twice_masks_once(installed):
    """`install` is idempotent: the factory is not wrapped again."""
    factory = logging.getLogRecordFactory()
    install()
    assert logging.getLogRecordFactory() is factory
