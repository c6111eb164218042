#!/usr/bin/python3
"""postfix_maildir.py start DIR PORT | stop DIR - a private Postfix instance
(tests/interop/peers.py) whose smtpd listens on 127.0.0.1:PORT and whose
virtual(8) delivery agent stores every message for bench.test in the Maildir
DIR/Maildir/, as a mail system with local delivery would; for
bench/scale.sh.  Postfix's own defaults otherwise: its queue file is synced
before the 250, and the delivery syncs the Maildir file before its rename.
Needs root."""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "interop"))
import peers  # noqa: E402


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "start":
        d, port = sys.argv[2], int(sys.argv[3])
        boxes = os.path.join(d, "boxes")
        os.makedirs(boxes, exist_ok=True)
        shutil.chown(boxes, "nobody", "nogroup")
        peers.PrivatePostfix(d, port, main_cf=(
            "virtual_mailbox_domains = bench.test\n"
            "virtual_mailbox_base = %s\n"
            "virtual_mailbox_maps = static:Maildir/\n"
            "virtual_uid_maps = static:65534\n"
            "virtual_gid_maps = static:65534\n"
            "virtual_transport = virtual\n"
            "alias_maps =\nalias_database =\n" % boxes))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "stop":
        pf = peers.PrivatePostfix.__new__(peers.PrivatePostfix)
        pf.conf = os.path.join(sys.argv[2], "pf")
        pf.stop()
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
