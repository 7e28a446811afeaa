/** `rayline serve run | deploy | status | config | build | shutdown`. */
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import yaml from 'js-yaml';
import { RaylineError } from '../errors.ts';
import { buildApplication } from '../runtime/controller/builder.ts';
import { ServeRestClient } from '../runtime/rest/client.ts';
import { importPathPattern, type ServeConfigInput } from '../schema/serve-config.ts';
import { readConfigFile, validateConfig } from './config-file.ts';
import { serveRun } from './serve-run.ts';

const defaultAddress = () => process.env.RAYLINE_ADDRESS ?? 'http://127.0.0.1:8265';

function client(options: { address: string; token?: string }): ServeRestClient {
  return new ServeRestClient(options.address, options.token ?? process.env.RAYLINE_API_TOKEN);
}

export function registerServeCommands(program: Command): void {
  const serve = program.command('serve').description('Run, deploy and inspect serve applications');
  const addressOption = ['-a, --address <url>', 'REST API of the head (env RAYLINE_ADDRESS)'] as const;
  const tokenOption = ['--token <token>', 'bearer token of the REST API (env RAYLINE_API_TOKEN)'] as const;

  serve
    .command('run')
    .description(
      'Start a local head, deploy a config file or module:export, and serve in the foreground (or deploy into a running head with --address)',
    )
    .argument('<target>', 'config file (YAML/JSON) or import path such as examples/hello/app.ts:app')
    .option('--host <host>', 'HTTP proxy host (overrides http_options.host)')
    .option('-p, --port <port>', 'HTTP proxy port (overrides http_options.port)', Number)
    .option('--route-prefix <prefix>', 'route prefix when the target is an import path')
    .option('--name <name>', 'application name when the target is an import path')
    .option('--dashboard-port <port>', 'REST API port', Number, 8265)
    .option('--metrics-port <port>', 'Prometheus metrics port', Number, 8080)
    .option(
      '-a, --address <url>',
      'deploy into the running head with this REST API instead of starting one (other applications stay); Ctrl-C removes what this command deployed',
    )
    .option('--keep-running', 'stay up when applications fail to deploy (default: stop and exit 1)')
    .option('--non-blocking', 'with --address: exit once the applications are running')
    .option(
      '--reload',
      're-deploy the applications when files in their working_dir change (implies --keep-running)',
    )
    .option(...tokenOption)
    .action(async (target: string, options, command: Command) => {
      await serveRun(target, options, command, (address) => client({ address, token: options.token }));
    });

  serve
    .command('deploy')
    .description('Apply a config file to a running head (declarative: applications not listed are deleted)')
    .argument('<config>', 'config file (YAML or JSON)')
    .option(...addressOption, defaultAddress())
    .option(...tokenOption)
    .action(async (file: string, options) => {
      const document = readConfigFile(file);
      validateConfig(document, `'${file}'`);
      await client(options).putApplications(document as never);
      console.log(`Sent deploy request for ${file} to ${options.address}.`);
    });

  serve
    .command('status')
    .description('Print the status of every application and deployment')
    .option(...addressOption, defaultAddress())
    .option(...tokenOption)
    .option('-n, --name <name>', 'print only this application')
    .action(async (options) => {
      const details = await client(options).getApplications();
      let apps = Object.values(details.applications);
      if (options.name !== undefined) {
        apps = apps.filter((a) => a.name === options.name);
        if (apps.length === 0) {
          const known = Object.keys(details.applications);
          throw new RaylineError(
            'RL_NOT_FOUND',
            `no application '${options.name}' on ${options.address} (--name); ${known.length > 0 ? `it has ${known.map((n) => `'${n}'`).join(', ')}` : 'it has none'}`,
          );
        }
      }
      const applications = Object.fromEntries(
        apps.map((app) => [
          app.name,
          {
            status: app.status,
            message: app.message,
            last_deployed_time_s: app.last_deployed_time_s,
            deployments: Object.fromEntries(
              Object.values(app.deployments).map((d) => [
                d.name,
                {
                  status: d.status,
                  status_trigger: d.status_trigger,
                  replica_states: countBy(d.replicas.map((r) => r.state)),
                  message: d.message,
                },
              ]),
            ),
          },
        ]),
      );
      if (options.name !== undefined) {
        // Ray's `serve status --name` prints the application alone.
        process.stdout.write(
          yaml.dump({ name: options.name, ...applications[options.name] }, { lineWidth: 120 }),
        );
        return;
      }
      const proxies = Object.fromEntries(Object.entries(details.proxies).map(([id, p]) => [id, p.status]));
      process.stdout.write(yaml.dump({ proxies, applications }, { lineWidth: 120 }));
    });

  serve
    .command('config')
    .description('Print the config of every deployed application')
    .option(...addressOption, defaultAddress())
    .option(...tokenOption)
    .action(async (options) => {
      const details = await client(options).getApplications();
      const configs = Object.values(details.applications).map((a) => a.deployed_app_config);
      process.stdout.write(configs.map((c) => yaml.dump(c, { lineWidth: 120 })).join('---\n'));
    });

  serve
    .command('build')
    .description('Write a config file for applications, with every deployment and its options from code')
    .argument('<import-paths...>', 'one or more path/to/module:app')
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .action(async (importPaths: string[], options) => {
      const config = await buildConfig(importPaths);
      validateConfig(config, 'built from code');
      const text = `# Generated by rayline serve build\n${yaml.dump(config, { lineWidth: 120 })}`;
      if (options.output) writeFileSync(options.output, text);
      else process.stdout.write(text);
    });

  serve
    .command('shutdown')
    .description('Delete every application on the head')
    .option(...addressOption, defaultAddress())
    .option(...tokenOption)
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (options) => {
      if (!options.yes) await confirmShutdown(options.address);
      await client(options).deleteApplications();
      console.log(`Sent shutdown request to ${options.address}.`);
    });
}

/** A config file for the given import paths, with each deployment's options from code spelled out. */
async function buildConfig(importPaths: string[]): Promise<ServeConfigInput> {
  const applications = [];
  for (const [i, importPath] of importPaths.entries()) {
    if (!importPathPattern.test(importPath)) {
      throw new RaylineError(
        'RL_CONFIG_INVALID',
        `'${importPath}' is not an import path like path/to/module:app`,
      );
    }
    const name = importPaths.length === 1 ? 'default' : `app${i + 1}`;
    const deployments = await buildApplication(
      { importPath, workingDir: process.cwd(), args: {} },
      {},
      process.stderr,
    );
    applications.push({
      name,
      route_prefix: importPaths.length === 1 ? '/' : `/${name}`,
      import_path: importPath,
      // Like Ray's: no working_dir, so the file works wherever the code sits beside it (an image, a
      // RayService's head); relative paths resolve against the file's folder (serve run) or the
      // head's working directory (serve deploy, RayService).
      runtime_env: {},
      deployments: deployments.map((d) => ({ name: d.name, ...d.codeOptions })),
    });
  }
  return { proxy_location: 'EveryNode', http_options: { host: '0.0.0.0', port: 8000 }, applications };
}

/** Asks in a terminal; without one, refuses (nobody can answer), as Ray's prompt aborts at end of input. */
async function confirmShutdown(address: string): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new RaylineError(
      'RL_BAD_REQUEST',
      'serve shutdown deletes every application and there is no terminal to confirm in: pass --yes',
    );
  }
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await prompt.question(`Delete every application on ${address}? [y/N] `);
  prompt.close();
  if (!/^y(es)?$/i.test(answer.trim())) {
    throw new RaylineError(
      'RL_BAD_REQUEST',
      'serve shutdown not confirmed; nothing was deleted (--yes skips the question)',
    );
  }
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
