// Test fixture, a class-style job. Counts lines per first word, and misbehaves on purpose:
// - a line containing the `fail-on` parameter's value throws (two frames deep, so the stack has
//   something to show);
// - reduce throws when the `fail-reduce` parameter is `yes`.
// Every line bumps the `lines-seen` counter and every reduce call logs once.
import { counter, log, param, task } from 'mr-sdk';

function refuse(marker) {
  throw new Error(`refusing the line with marker ${JSON.stringify(marker)}`);
}

export default class Faulty {
  static info = {
    name: 'faulty-js',
    version: '0.0.1',
    description: 'Counts lines by first word; fails on purpose on marked lines.',
    params: [
      { name: 'fail-on', description: 'Throw on a line containing this text' },
      { name: 'fail-reduce', description: 'Fail every reduce call when `yes`', default: 'no', type: 'enum', choices: ['yes', 'no'] },
    ],
  };

  constructor() {
    // Read once per worker: the instance is created on the first call, inside the task.
    this.failOn = param('fail-on');
  }

  map(record, emit) {
    const line = record.value;
    if (this.failOn && line.includes(this.failOn)) refuse(this.failOn);
    counter('lines-seen');
    emit(line.split(/\s+/).filter(Boolean)[0] ?? '', 1);
  }

  reduce(key, values, emit) {
    if (param('fail-reduce') === 'yes') throw new Error(`reduce refused key ${JSON.stringify(key)} on purpose`);
    log.debug(`reducing in partition ${task().shard}`);
    let n = 0;
    for (const _ of values) n++;
    emit(key, n);
  }
}
