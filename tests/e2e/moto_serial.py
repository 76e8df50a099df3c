"""`moto_server`, with its DynamoDB requests handled one at a time.

DynamoDB serialises writes to an item and runs each TransactWriteItems call in isolation;
moto does neither across threads: its transactions check conditions and then write with no
lock, and a cancelled transaction restores a copy of the whole table taken when it began,
wiping whatever other threads wrote meanwhile. Sluice's concurrency tests need DynamoDB's
semantics, so this wrapper takes one lock around every DynamoDB action (S3 and the other
services stay concurrent) and then runs moto's own server main."""

import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_lock = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialised(self):
    with _lock:
        return _call_action(self)


DynamoHandler.call_action = _serialised

if __name__ == "__main__":
    sys.exit(main())
