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
  .showHelpAfterError(false)
  // Commander's own refusals (unknown option, missing argument) in Rayline's one-line form.
  .configureOutput({
    outputError: (text, write) =>
      write(
        `rayline: ${text
          .replace(/^error: /, '')
          .replace(/\n+/g, ' ')
          .trim()} [RL_BAD_REQUEST]\n`,
      ),
  });

registerServeCommands(program);
registerStartStop(program);
registerOperatorCommand(program);

/** The flag to change, for errors raised below the CLI that cannot know it. */
function hint(error: RaylineError): string {
  if (error.code === 'RL_CONNECTION' && !error.message.includes('--address'))
    return ' (--address, env RAYLINE_ADDRESS)';
  if (error.code === 'RL_UNAUTHORIZED' && !error.message.includes('--token'))
    return ' (--token, env RAYLINE_API_TOKEN)';
  return '';
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exit(error.exitCode);
  }
  const message =
    error instanceof RaylineError
      ? `${error.message}${hint(error)} [${error.code}]`
      : `${(error as Error).message} [${(error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'RL_PORT_IN_USE' : 'RL_INTERNAL'}]`;
  console.error(`rayline: ${message}`);
  process.exit(1);
}
