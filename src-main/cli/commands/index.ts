/**
 * The command registry. To add a command, write a module in this folder exporting a CliCommand and list it
 * here (order = order in `dlm-studio help`).
 */
import type { CliCommand } from '../framework';
import { benchCommand } from './bench';
import { corpusCommand } from './corpus';
import { evalCommand } from './eval';
import { generateCommand } from './generate';
import { modelsCommand } from './models';
import { recipesCommand } from './recipes';
import { runsCommand } from './runs';
import { serveTestCommand } from './serve-test';
import { setsCommand } from './sets';

export const COMMANDS: CliCommand[] = [generateCommand, modelsCommand, benchCommand, evalCommand, setsCommand, runsCommand, recipesCommand, corpusCommand, serveTestCommand];
