// Starts local-aws-sqs on 127.0.0.1 for tests and the demo.
// Usage: node tools/sqs-server.js [port]   (default: $SQS_PORT or 4568)
"use strict";

const { createSqsServer } = require("local-aws-sqs");

const port = Number(process.argv[2] || process.env.SQS_PORT || 4568);

createSqsServer({
  port,
  hostname: "127.0.0.1",
  // Tests delete and recreate queues with the same names; AWS's 60 s wait
  // between the two would only slow them down.
  emulateQueueCreationLifecycle: false,
})
  .then((server) => {
    console.log(`local-aws-sqs listening at http://127.0.0.1:${port}`);
    const stop = () => server.close(() => process.exit(0));
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  })
  .catch((err) => {
    console.error("local-aws-sqs failed to start:", err);
    process.exit(1);
  });
