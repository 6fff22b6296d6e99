import { z } from 'zod';
import { ValidationError } from '../../../schemas/index.js';
import { ROLES, TokenSchema, loadConfig, toSettingIssues } from '../../shared/config/config.js';
import { createToken } from '../../shared/config/tokens.js';
import { EXIT } from '../exitCodes.js';
import type { RegisterCommand } from '../program.js';

const OptionsSchema = z.object({
  role: z
    .string()
    .transform((s) => s.split(',').map((r) => r.trim()))
    .pipe(z.array(z.enum(ROLES, { error: `expected roles from ${ROLES.join(', ')}, comma-separated` })).min(1)),
  name: TokenSchema.shape.name.optional(),
  dataDir: z.string().min(1).optional(),
  config: z.string().optional(),
});

/**
 * `iommutrail token create --role <roles> [--name N]`: a new token for the service of this data folder. The token
 * is printed once on stdout (only it, so a script can capture it); tokens.json keeps its hash. A lost first-start
 * banner is recovered this way.
 */
export const registerToken: RegisterCommand = (program, run) => {
  const token = program.command('token').description('manage the bearer tokens kept hashed in <dataDir>/tokens.json');
  token
    .command('create')
    .description('add a token with the given roles and print it once (the service reads it at its next start)')
    .requiredOption('--role <roles>', `comma-separated roles: ${ROLES.join(', ')} (admin implies every role)`)
    .option('--name <name>', 'a name for the token (default: the roles and a number)')
    .option('--data-dir <dir>', "the service's data folder (default .data)")
    .option('--config <file>', 'YAML or JSON config (also IOMMUTRAIL_CONFIG)')
    .action((raw: Record<string, unknown>) =>
      run(async () => {
        const parsed = OptionsSchema.safeParse(raw);
        if (!parsed.success) {
          const issues = toSettingIssues('', parsed.error).map((i) => ({ ...i, path: `--${i.path.replace(/\[\d+\]$/, '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}` }));
          throw new ValidationError(`token create: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
        }
        const opts = parsed.data;
        const config = loadConfig({ file: opts.config, overrides: opts.dataDir ? { dataDir: opts.dataDir } : {} });
        if (config.auth.tokens.length > 0) {
          throw new ValidationError('auth.tokens: tokens are configured (config file or IOMMUTRAIL_TOKENS), so the service does not read tokens.json; add the new token there', [
            { path: 'auth.tokens', message: 'configured: tokens.json is not read' },
          ]);
        }
        const created = createToken(config.dataDir, opts.role, opts.name);
        console.log(created.token);
        console.error(`iommutrail: token "${created.name}" (${opts.role.join(', ')}) added to ${created.file}, kept hashed, shown only now; the service reads it at its next start`);
        return Promise.resolve(EXIT.ok);
      }),
    );
};
