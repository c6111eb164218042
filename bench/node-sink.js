// node-sink.js - an accept-and-discard SMTP server on the npm package
// smtp-server (Nodemailer's), for bench/scale.sh, which installs it into
// build/bench/node.  Usage: node node-sink.js PORT
// AUTH and reverse lookups are off; PIPELINING and 8BITMIME as the package
// offers them.  Stops on SIGTERM, printing the messages it took.
'use strict';
const path = require('path');
const { SMTPServer } = require(path.join(process.env.NODE_DIR || '.',
                                         'node_modules', 'smtp-server'));

let count = 0;
const server = new SMTPServer({
    name: 'node.bench.test',
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    size: 64 * 1024 * 1024,
    maxClients: 200000,
    socketTimeout: 300 * 1000,
    onData(stream, session, callback) {
        stream.on('data', () => {});
        stream.on('end', () => {
            count++;
            callback(null, 'Ok');
        });
    },
});
server.on('error', (err) => console.error('node-sink:', err.message));
server.listen({ host: '127.0.0.1', port: parseInt(process.argv[2], 10),
                backlog: 4096 });
process.on('SIGTERM', () => {
    console.error(`node-sink: ${count} messages`);
    process.exit(0);
});
