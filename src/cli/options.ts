import { type Command, Option } from 'commander';
import { CONNECTION_SETTINGS, type ConnectionConfig, parseConnection } from '../config/client.js';
import { addOptions, createReader, type Env, envOnlyHelp } from '../config/settings.js';
import { usageError } from './exit-codes.js';

/** The connection flags every command that calls a node takes, with the server's naming rules. */
export function addConnectionOptions(command: Command): Command {
  addOptions(command, 'Connection:', CONNECTION_SETTINGS);
  return command.addHelpText('after', envOnlyHelp(CONNECTION_SETTINGS));
}

export function connectionOf(command: Command, env: Env): ConnectionConfig {
  return parseConnection(createReader(CONNECTION_SETTINGS, command.opts(), env));
}

/** A repeatable flag: `--client-type app --client-type pc` or `--client-type app,pc`; `whenAbsent` is what --help says it means unset. */
export function repeatable(flags: string, description: string, whenAbsent: string): Option {
  const collect = (value: string, previous: readonly string[]): string[] => [...previous, ...value.split(',').map((part) => part.trim())];
  return new Option(flags, `${description} (repeat, or separate with commas)`).argParser(collect).default([], whenAbsent);
}

const UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration flag: a whole number in `bareUnit`, or with a unit (`500ms`, `5s`, `10m`, `1h`, `7d`).
 * Returns milliseconds; the error names the flag.
 */
export function durationMs(flag: string, value: string, bareUnit: 'ms' | 's'): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  if (match === null) {
    throw usageError(
      `${flag} must be a whole number of ${bareUnit === 'ms' ? 'milliseconds' : 'seconds'} or carry a unit (500ms, 5s, 10m, 1h, 7d), got "${value}"`,
    );
  }
  return Number(match[1]) * UNITS_MS[match[2] ?? bareUnit]!;
}

export function positiveInt(flag: string, value: string, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw usageError(`${flag} must be a whole number from 1 to ${max}, got "${value}"`);
  }
  return Number(value);
}
