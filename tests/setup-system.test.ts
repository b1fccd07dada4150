/**
 * `npm test`'s set-up stage (scripts/setup-system.mjs): what it finds missing, and what it then does or says,
 * with the machine's probes injected, so no case runs apt.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  findMissing,
  installCommand,
  nodeSatisfies,
  packagesFor,
  planSetup,
  readOs,
  setUp,
  stillMissingMessage,
} from '../scripts/setup-system.mjs';

const DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n';
const UBUNTU = 'PRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nID_LIKE=debian\n';
const FEDORA = 'PRETTY_NAME="Fedora Linux 40"\nID=fedora\n';

type Piece = 'chromium' | 'swiftshader' | 'vulkan' | 'torch' | 'openblas' | 'pyyaml' | 'go';

/** A machine where `absent` pieces are missing until apt-get installs the packages that bring them. */
function machine(
  absent: Piece[] = [],
  options: {
    os?: string | null;
    root?: boolean;
    sudo?: 'passwordless' | 'password' | 'absent';
    node?: string;
    modules?: boolean;
    notOffered?: string[];
    aptFails?: 'update' | 'install';
  } = {},
) {
  const missing = new Set<Piece>(absent);
  const runs: string[][] = [];
  const log: string[] = [];
  const bring: Record<string, Piece[]> = {
    chromium: ['chromium', 'swiftshader'],
    libvulkan1: ['vulkan'],
    'python3-torch': ['torch'],
    'libopenblas0-pthread': ['openblas'],
    'python3-yaml': ['pyyaml'],
    'golang-go': ['go'],
  };
  let sudoAsked = 0;
  const system = {
    nodeVersion: options.node ?? '20.20.2',
    nodeRequired: '^20.19.0 || ^22.13.0 || >=24',
    modulesInstalled: () => options.modules ?? true,
    isFile: (file: string) => !(file.endsWith('vk_swiftshader_icd.json') && missing.has('swiftshader')),
    isExecutable: (file: string) => !(file === '/usr/bin/chromium' && missing.has('chromium')),
    hasSharedLibrary: () => !missing.has('vulkan'),
    python: () => ({
      torch: !missing.has('torch'),
      openblas: !missing.has('torch') && !missing.has('openblas'),
      pyyaml: !missing.has('pyyaml'),
    }),
    hasGo: () => !missing.has('go'),
    osRelease: () => (options.os === undefined ? DEBIAN : options.os),
    hasApt: () => options.os !== FEDORA,
    isRoot: () => options.root ?? true,
    sudo: () => {
      sudoAsked++;
      return options.sudo ?? 'absent';
    },
    aptCandidates: (packages: string[]) => packages.filter((name) => !options.notOffered?.includes(name)),
    run: (command: string[]) => {
      runs.push(command);
      const install = command.includes('install');
      if (options.aptFails === (install ? 'install' : 'update')) {
        return { status: 100, output: 'E: Could not get lock /var/lib/dpkg/lock-frontend' };
      }
      if (install) for (const name of command) for (const piece of bring[name] ?? []) missing.delete(piece);
      return { status: 0, output: '' };
    },
    log: (line: string) => log.push(line),
  };
  return { system, runs, log, sudoAsked: () => sudoAsked };
}

describe('the set-up stage', () => {
  it('on a machine that has everything, runs no apt and asks no sudo', () => {
    const { system, runs, log, sudoAsked } = machine([], { root: false, sudo: 'passwordless' });
    expect(setUp(system)).toBe(0);
    expect(runs).toEqual([]);
    expect(sudoAsked()).toBe(0);
    expect(log.join('\n')).toMatch(/^System set-up: Node 20\.20\.2, .* are in place \(\d+\.\d s\)\.$/);
  });

  it('as root on Debian, installs exactly the missing packages, quietly, then checks again', () => {
    const { system, runs, log } = machine(['go', 'pyyaml']);
    expect(setUp(system)).toBe(0);
    expect(runs).toEqual([
      ['apt-get', 'update', '-qq', '-o', 'DPkg::Lock::Timeout=300'],
      [
        'apt-get',
        'install',
        '-y',
        '-qq',
        '--no-install-recommends',
        '-o',
        'DPkg::Lock::Timeout=300',
        'python3',
        'python3-yaml',
        'golang-go',
      ],
    ]);
    expect(log[0]).toBe('System set-up: installing python3, python3-yaml, golang-go with apt-get…');
    expect(log[1]).toMatch(/^System set-up: installed in \d+\.\d s\.$/);
  });

  it('with passwordless sudo, installs through sudo -n', () => {
    const { system, runs } = machine(['chromium', 'swiftshader', 'vulkan'], {
      root: false,
      sudo: 'passwordless',
    });
    expect(setUp(system)).toBe(0);
    expect(runs[0].slice(0, 3)).toEqual(['sudo', '-n', 'apt-get']);
    expect(runs[1].slice(0, 4)).toEqual(['sudo', '-n', 'apt-get', 'install']);
    expect(runs[1].slice(-2)).toEqual(['chromium', 'libvulkan1']);
  });

  it('without root or sudo, stops before the tests naming the packages and the one command', () => {
    const { system, runs, log } = machine(['go'], { root: false, sudo: 'absent' });
    expect(setUp(system)).toBe(1);
    expect(runs).toEqual([]);
    const message = log.join('\n');
    expect(message).toContain('stopped before the tests');
    expect(message).toContain("Go on the PATH (renders the Ollama Modelfile's TEMPLATE");
    expect(message).toContain('sudo is not installed');
    expect(message).toContain("  su -c 'apt-get install -y --no-install-recommends golang-go'");
  });

  it('when sudo wants a password, says to run the command with sudo', () => {
    const { system, log } = machine(['torch'], { root: false, sudo: 'password' });
    expect(setUp(system)).toBe(1);
    expect(log.join('\n')).toContain(
      '  sudo apt-get install -y --no-install-recommends python3 python3-torch libopenblas0-pthread\n',
    );
  });

  it('on a system that is not Debian or Ubuntu, names what is missing and the Debian packages', () => {
    const { system, runs, log } = machine(['vulkan'], { os: FEDORA });
    expect(setUp(system)).toBe(1);
    expect(runs).toEqual([]);
    const message = log.join('\n');
    expect(message).toContain('this system (Fedora Linux 40) is not Debian or Ubuntu');
    expect(message).toContain('the Vulkan loader libvulkan.so.1');
    expect(message).toContain('sudo apt-get install -y --no-install-recommends libvulkan1');
  });

  it('on Ubuntu, installs what apt offers and says what it does not', () => {
    const { system, runs, log } = machine(['chromium', 'swiftshader', 'go'], {
      os: UBUNTU,
      notOffered: ['chromium'],
    });
    expect(setUp(system)).toBe(1);
    expect(runs[1].slice(-1)).toEqual(['golang-go']);
    expect(runs[1]).not.toContain('chromium');
    const message = log.join('\n');
    expect(message).toContain('Chromium at /usr/bin/chromium (the end-to-end tests drive it): chromium');
    expect(message).not.toContain('Go on the PATH');
    expect(message).toContain('apt sources offer no chromium');
  });

  it('when apt-get fails, shows its last lines and the command to run by hand', () => {
    const { system, log } = machine(['go'], { aptFails: 'install' });
    expect(setUp(system)).toBe(1);
    const message = log.join('\n');
    expect(message).toContain('E: Could not get lock');
    expect(message).toContain('  apt-get install -y --no-install-recommends golang-go\n');
  });

  it('when apt-get update fails, installs nothing and says so', () => {
    const { system, runs, log } = machine(['go'], { root: false, sudo: 'passwordless', aptFails: 'update' });
    expect(setUp(system)).toBe(1);
    expect(runs).toHaveLength(1);
    const message = log.join('\n');
    expect(message).toContain('`sudo -n apt-get update -qq -o DPkg::Lock::Timeout=300` failed');
    expect(message).toContain('  sudo apt-get install -y --no-install-recommends golang-go\n');
  });

  it('with too old a Node, stops saying what to install, and lists missing packages too', () => {
    const { system, runs, log } = machine(['go'], { node: '18.19.0' });
    expect(setUp(system)).toBe(1);
    expect(runs).toEqual([]);
    const message = log.join('\n');
    expect(message).toContain(
      'webtune needs Node ^20.19.0 || ^22.13.0 || >=24 (package.json "engines"); this is Node 18.19.0.',
    );
    expect(message).toContain('such as the current LTS');
    expect(message).toContain('npm test installs them once the above is fixed');
  });

  it('without node_modules, says to run npm install', () => {
    const { system, log } = machine([], { modules: false });
    expect(setUp(system)).toBe(1);
    expect(log.join('\n')).toContain('The npm packages are not installed: run `npm install && npm test`.');
  });
});

describe('its pieces', () => {
  it('finds each missing piece, OpenBLAS only when torch itself loads', () => {
    expect(findMissing(machine().system)).toEqual([]);
    expect(findMissing(machine(['torch', 'openblas']).system)).toEqual(['torch']);
    expect(findMissing(machine(['openblas']).system)).toEqual(['openblas']);
    expect(findMissing(machine(['chromium', 'swiftshader', 'vulkan', 'pyyaml', 'go']).system)).toEqual([
      'chromium',
      'swiftshader',
      'vulkan',
      'pyyaml',
      'go',
    ]);
  });

  it('maps pieces to Debian packages, each once', () => {
    expect(packagesFor(['chromium', 'swiftshader'])).toEqual(['chromium']);
    expect(packagesFor(['torch', 'pyyaml'])).toEqual([
      'python3',
      'python3-torch',
      'libopenblas0-pthread',
      'python3-yaml',
    ]);
    expect(packagesFor(['openblas'])).toEqual(['libopenblas0-pthread']);
  });

  it('reads package.json engines', () => {
    const engines = '^20.19.0 || ^22.13.0 || >=24';
    expect(nodeSatisfies('20.19.0', engines)).toBe(true);
    expect(nodeSatisfies('20.20.2', engines)).toBe(true);
    expect(nodeSatisfies('22.13.1', engines)).toBe(true);
    expect(nodeSatisfies('24.0.0', engines)).toBe(true);
    expect(nodeSatisfies('26.1.0', engines)).toBe(true);
    expect(nodeSatisfies('20.18.3', engines)).toBe(false);
    expect(nodeSatisfies('21.7.0', engines)).toBe(false);
    expect(nodeSatisfies('22.12.0', engines)).toBe(false);
    expect(nodeSatisfies('23.11.0', engines)).toBe(false);
    expect(nodeSatisfies('18.20.4', engines)).toBe(false);
    expect(nodeSatisfies('v20.6.0', '>= 20.6')).toBe(true);
    expect(nodeSatisfies('20.5.1', '>=20.6')).toBe(false);
    // A form this does not parse is left to npm.
    expect(nodeSatisfies('16.0.0', '20.x')).toBe(true);
  });

  it("judges package.json's own engines range, which this Node satisfies", () => {
    const engines = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', 'package.json'), 'utf8')).engines
      .node as string;
    expect(nodeSatisfies('18.20.4', engines)).toBe(false);
    expect(nodeSatisfies(process.versions.node, engines)).toBe(true);
  });

  it('tells Debian and Ubuntu from other systems', () => {
    expect(readOs(DEBIAN)).toEqual({ name: 'Debian GNU/Linux 12 (bookworm)', debianLike: true });
    expect(readOs(UBUNTU).debianLike).toBe(true);
    expect(readOs('ID=linuxmint\nID_LIKE="ubuntu debian"\n').debianLike).toBe(true);
    expect(readOs(FEDORA)).toEqual({ name: 'Fedora Linux 40', debianLike: false });
    expect(readOs(null)).toEqual({ name: 'unknown', debianLike: false });
  });

  it('writes the install command for who runs it', () => {
    expect(installCommand(['golang-go'], 'root')).toBe(
      'apt-get install -y --no-install-recommends golang-go',
    );
    expect(installCommand(['golang-go'], 'sudo-password')).toBe(
      'sudo apt-get install -y --no-install-recommends golang-go',
    );
    expect(installCommand(['golang-go'], 'none')).toBe(
      "su -c 'apt-get install -y --no-install-recommends golang-go'",
    );
  });

  it('a plan is pure: the same facts, the same decision', () => {
    const facts = {
      nodeVersion: '20.20.2',
      nodeRequired: '^20.19.0 || ^22.13.0 || >=24',
      modulesInstalled: true,
      missing: ['go' as const],
      debianLike: true,
      osName: 'Debian',
      privilege: 'root' as const,
    };
    expect(planSetup(facts)).toEqual(planSetup(facts));
    expect(planSetup({ ...facts, missing: [] })).toEqual({ kind: 'ready' });
    expect(stillMissingMessage(['go'], [])).toContain('the tests look for these at the paths named above');
  });
});
