import type { Logger } from 'pino';

/** A stack of clean-up steps, run newest first, so a failed start-up undoes exactly what it did. */
export class Closer {
  private readonly steps: { name: string; run: () => Promise<void> }[] = [];
  constructor(private readonly logger: Logger) {}

  add(name: string, run: () => Promise<void>): void {
    this.steps.push({ name, run });
  }

  async run(): Promise<void> {
    for (const step of this.steps.reverse()) {
      try {
        await step.run();
      } catch (err) {
        this.logger.error({ err, step: step.name }, 'shutdown step failed');
      }
    }
    this.steps.length = 0;
  }
}
