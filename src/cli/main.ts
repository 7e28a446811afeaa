/**
 * The `rayline` command: run and deploy serve applications, start and stop a local head, run the
 * Kubernetes operator.
 * The only place that writes to the console directly; failures print one line and exit non-zero.
 */
import { Command, CommanderError } from 'commander';
import { RaylineError } from '../errors.ts';
import { registerOperatorCommand } from './operator-command.ts';
import { registerServeCommands } from './serve-commands.ts';
import { registerStartStop } from './start-stop.ts';

const program = new Command('rayline')
  .description('Serve ML and LLM pipelines written in TypeScript, locally or on Kubernetes')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError(false);

registerServeCommands(program);
registerStartStop(program);
registerOperatorCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exit(error.exitCode);
  }
  const message =
    error instanceof RaylineError ? `${error.message} [${error.code}]` : (error as Error).message;
  console.error(`rayline: ${message}`);
  process.exit(1);
}
