"""relay_peer.py - smtpx-relay as a child process for the interop tests:
its own queue directory, a free port, its log, and waiting for the queue
to drain."""
import os
import signal
import subprocess
import time

import peers


class Relay:
    def __init__(self, build, dir, *args, port=None, env=None):
        self.bin = os.path.join(build, "examples", "smtpx-relay")
        self.dir = dir
        self.queue = os.path.join(dir, "queue")
        self.port = port or peers.free_port()
        self.args = list(args)
        self.env = env
        self.log = open(os.path.join(dir, "relay.log"), "a")
        self.proc = None

    def start(self, wait=True):
        argv = [self.bin, "--listen", "127.0.0.1:%d" % self.port,
                "--queue", self.queue, "--hostname", "relay.test",
                "-v"] + self.args
        self.proc = subprocess.Popen(argv, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env)
        if wait:
            peers.wait_port(self.port, self.proc)
        return self

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        code = peers.stop_process(self.proc)
        return code

    def close(self):
        self.log.close()

    def logtext(self):
        if self.log.closed:
            with open(self.log.name) as f:
                return f.read()
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def listing(self):
        r = subprocess.run([self.bin, "--queue", self.queue, "--list"],
                           capture_output=True, text=True, timeout=30)
        return r.stdout + r.stderr

    def flush(self):
        return subprocess.run([self.bin, "--queue", self.queue, "--flush"],
                              capture_output=True, text=True, timeout=30)

    def queued(self):
        d = os.path.join(self.queue, "msg")
        return len(os.listdir(d)) if os.path.isdir(d) else 0

    def wait_empty(self, t=30):
        end = time.monotonic() + max(t, peers.WAIT)
        while time.monotonic() < end:
            if self.queued() == 0:
                return True
            time.sleep(0.05)
        return False
