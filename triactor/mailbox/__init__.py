"""Bounded mailboxes: capacity, overflow policies, priority lanes and a control lane."""

from ._mailbox import EMPTY, Mailbox, MailboxStatistics
from ._overflow import Overflow

__all__ = ["EMPTY", "Mailbox", "MailboxStatistics", "Overflow"]
