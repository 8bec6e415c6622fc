"""Write the Pushgateway's web configuration: one login, its password as a bcrypt hash.

Run by compose's one-shot `pushgateway-web` service (the fraudpipe image has bcrypt and
PyYAML); the local stack writes the same file in `fraudpipe.stack.pushgateway`. The file holds
no password, only its hash, and is readable by the Pushgateway's user (another container's).
"""

import os
import sys
from pathlib import Path

import bcrypt
import yaml

target = Path(sys.argv[1])
user = os.environ["FRAUDPIPE_PUSHGATEWAY_USER"]
password = os.environ["FRAUDPIPE_PUSHGATEWAY_PASSWORD"].encode()
hashed = bcrypt.hashpw(password, bcrypt.gensalt()).decode()
target.write_text(yaml.safe_dump({"basic_auth_users": {user: hashed}}))
target.chmod(0o644)
