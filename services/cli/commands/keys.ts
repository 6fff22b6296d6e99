import { rotateSigningKeys } from '../../shared/eventStore/sqlite/tamper/signing.js';
import { EXIT } from '../exitCodes.js';
import type { RegisterCommand } from '../program.js';

/** `iommutrail keys rotate [--key-dir dir]`: a new signing key on purpose, the old public key kept for old checkpoints */
export const registerKeys: RegisterCommand = (program, run) => {
  const keys = program.command('keys').description("manage the store's signing key (checkpoints and seals)");
  keys
    .command('rotate')
    .description('replace the signing key on purpose (service stopped); the old public key is kept beside it so verify still checks the checkpoints it signed')
    .option('--key-dir <dir>', 'the key folder (default: $IOMMUTRAIL_KEY_DIR, else $IOMMUTRAIL_DATA_DIR, else .data)')
    .action((opts: { keyDir?: string }) =>
      run(async () => {
        const dir = opts.keyDir ?? process.env.IOMMUTRAIL_KEY_DIR ?? process.env.IOMMUTRAIL_DATA_DIR ?? '.data';
        const r = rotateSigningKeys(dir);
        console.log(`rotated the signing key in ${dir}: ${r.oldKeyId.slice(0, 16)}… → ${r.newKeyId.slice(0, 16)}…; the old public key is kept as ${r.retired}`);
        return Promise.resolve(EXIT.ok);
      }),
    );
};
