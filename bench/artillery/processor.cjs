// Processor of bench/artillery-vs-swarm.mjs's Artillery scenario: each virtual user counts the messages its
// WebSocket receives (one integer per connection, no parsing: Artillery unaudited) and reports the count once, as
// the counter bench.messages_received, when its think time is over.
'use strict';

module.exports = {
  count(context, _ee, next) {
    context.vars.received = 0;
    context.ws.on('message', () => {
      context.vars.received++;
    });
    next();
  },
  report(context, ee, next) {
    ee.emit('counter', 'bench.messages_received', context.vars.received);
    next();
  },
};
