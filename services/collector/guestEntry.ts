#!/usr/bin/env node
import { registerCollect } from '../cli/commands/collect.js';
import { createMain } from '../cli/program.js';

/**
 * `iommutrail collect` alone, the entry of the one-file bundle a small system runs (the kernel oracle's guest
 * initramfs, services/kernelOracle/guestCollector.ts): the full CLI would pull the service, chdb and the report
 * renderer in. Same command, same code paths, same options.
 */
process.exitCode = await createMain([registerCollect])(process.argv.slice(2));
