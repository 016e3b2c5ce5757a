/** Headless Debian `chromium` (scripts/test-servers.txt installs it) driven by playwright-core. */
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Flags that keep Chromium off the network it cannot reach here (see the machine notes) and quiet in a sandbox;
 * `extraArgs` adds more (e.g. `--ignore-certificate-errors` for a self-signed test server).
 */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      ...extraArgs,
    ],
  });
}
