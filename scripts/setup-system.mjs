#!/usr/bin/env node
// @ts-check
// `npm run setup`, the first stage of `npm test`: makes sure this machine has what the tests use beyond npm
// packages, and installs what is missing. Each piece is detected by what the tests themselves touch (the
// binary, the driver file, the shared library, the Python module), not by dpkg, so a machine that has them
// from elsewhere is fine too. On Debian or Ubuntu, as root or with passwordless sudo, missing pieces are
// installed quietly with apt-get; otherwise the set-up stops before the tests and says exactly which
// packages to install and the one command that does it. A machine that has everything never runs apt.
// The decisions (planSetup) are pure and the system probes are injected, so tests/setup-system.test.ts
// checks every case without apt.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * @typedef {'chromium' | 'swiftshader' | 'vulkan' | 'torch' | 'openblas' | 'pyyaml' | 'go'} PieceId
 * @typedef {{ id: PieceId, what: string, packages: string[] }} Piece
 * @typedef {'root' | 'sudo' | 'sudo-password' | 'none'} Privilege
 * @typedef {{
 *   nodeVersion: string,
 *   nodeRequired: string,
 *   modulesInstalled: boolean,
 *   missing: PieceId[],
 *   debianLike: boolean,
 *   osName: string,
 *   privilege: Privilege,
 * }} Facts
 * @typedef {{ kind: 'ready' }
 *   | { kind: 'install', packages: string[], command: string[] }
 *   | { kind: 'stop', message: string }} Plan
 */

export const CHROMIUM = '/usr/bin/chromium';
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
export const PYTHON = '/usr/bin/python3';

/**
 * What the tests use that npm does not install, in the order the messages list them. The Debian packages
 * are those that bring each piece (`.ci/run` used to install the same list itself).
 * @type {Piece[]}
 */
export const PIECES = [
  {
    id: 'chromium',
    what: `Chromium at ${CHROMIUM} (the end-to-end tests drive it)`,
    packages: ['chromium'],
  },
  {
    id: 'swiftshader',
    what: `SwiftShader's Vulkan driver at ${SWIFTSHADER_ICD} (WebGPU without a GPU, in Node and in Chromium)`,
    packages: ['chromium'],
  },
  {
    id: 'vulkan',
    what: 'the Vulkan loader libvulkan.so.1 (Dawn, WebGPU in Node)',
    packages: ['libvulkan1'],
  },
  {
    id: 'torch',
    what: `PyTorch in ${PYTHON} (the PyTorch reference the engine is checked against)`,
    packages: ['python3', 'python3-torch', 'libopenblas0-pthread'],
  },
  {
    id: 'openblas',
    what: 'OpenBLAS under PyTorch (the reference BLAS would make the PyTorch checks far slower)',
    packages: ['libopenblas0-pthread'],
  },
  {
    id: 'pyyaml',
    what: `PyYAML in ${PYTHON} (reads the TRL export's config as TRL does)`,
    packages: ['python3', 'python3-yaml'],
  },
  {
    id: 'go',
    what: "Go on the PATH (renders the Ollama Modelfile's TEMPLATE with text/template, as Ollama does)",
    packages: ['golang-go'],
  },
];

const APT_FLAGS = ['-y', '-qq', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300'];

/** The Debian packages that bring these pieces, each once, in PIECES order. */
export function packagesFor(/** @type {PieceId[]} */ missing) {
  const packages = PIECES.filter((piece) => missing.includes(piece.id)).flatMap((piece) => piece.packages);
  return [...new Set(packages)];
}

/**
 * Whether `version` (e.g. "20.20.2") satisfies an engines range made of `>=x.y.z` and `^x.y.z` alternatives
 * joined by `||` (the forms package.json uses); a range in any other form is not judged here.
 */
export function nodeSatisfies(/** @type {string} */ version, /** @type {string} */ range) {
  const have = version.replace(/^v/, '').split('.').map(Number);
  /** @param {number[]} need */
  const atLeast = (need) => {
    for (let i = 0; i < 3; i++) if ((have[i] ?? 0) !== need[i]) return (have[i] ?? 0) > need[i];
    return true;
  };
  const alternatives = range
    .split('||')
    .map((part) => /^(>=|\^)\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(part.trim()));
  if (alternatives.some((match) => match === null)) return true;
  return alternatives.some((match) => {
    const [, operator, ...parts] = /** @type {RegExpExecArray} */ (match);
    const need = parts.map((part) => Number(part ?? 0));
    return atLeast(need) && (operator === '>=' || have[0] === need[0]);
  });
}

/** The command a person runs to install `packages`, given who they are. */
export function installCommand(/** @type {string[]} */ packages, /** @type {Privilege} */ privilege) {
  const apt = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  if (privilege === 'root') return apt;
  if (privilege === 'none') return `su -c '${apt}'`;
  return `sudo ${apt}`;
}

function describe(/** @type {PieceId[]} */ missing) {
  return PIECES.filter((piece) => missing.includes(piece.id))
    .map((piece) => `  - ${piece.what}: ${piece.packages.join(', ')}`)
    .join('\n');
}

/**
 * What to do, from what is known about the machine: nothing, install these packages with this command, or
 * stop with a message for the person at the keyboard.
 * @param {Facts} facts
 * @returns {Plan}
 */
export function planSetup(facts) {
  const problems = [];
  if (!nodeSatisfies(facts.nodeVersion, facts.nodeRequired)) {
    problems.push(
      `webtune needs Node ${facts.nodeRequired} (package.json "engines"); this is Node ${facts.nodeVersion}.\n` +
        'Install a Node that fits, such as the current LTS (https://nodejs.org, or `nvm install --lts`), then run ' +
        '`npm install && npm test` again.',
    );
  }
  if (!facts.modulesInstalled) {
    problems.push('The npm packages are not installed: run `npm install && npm test`.');
  }
  const packages = packagesFor(facts.missing);
  if (packages.length > 0) {
    const canInstall = facts.debianLike && (facts.privilege === 'root' || facts.privilege === 'sudo');
    if (canInstall && problems.length === 0) {
      const apt = ['apt-get', 'install', ...APT_FLAGS, ...packages];
      return {
        kind: 'install',
        packages,
        command: facts.privilege === 'sudo' ? ['sudo', '-n', ...apt] : apt,
      };
    }
    if (!facts.debianLike) {
      problems.push(
        `The tests need these, and this system (${facts.osName}) is not Debian or Ubuntu, so they cannot be ` +
          `installed for you:\n${describe(facts.missing)}\n` +
          'Those are the Debian package names; on Debian or Ubuntu one command installs them:\n' +
          `  ${installCommand(packages, 'sudo-password')}\n` +
          'Elsewhere, install the equivalents at the paths named above, or run the tests in a Debian 12 container.',
      );
    } else if (canInstall) {
      problems.push(
        `These system packages are missing too (npm test installs them once the above is fixed):\n${describe(facts.missing)}`,
      );
    } else {
      const who =
        facts.privilege === 'sudo-password'
          ? 'this user is not root, and sudo would ask for a password'
          : 'this user is not root and sudo is not installed';
      problems.push(
        `The tests need system packages that are missing:\n${describe(facts.missing)}\n` +
          `They cannot be installed for you (${who}). Install them with this one command:\n` +
          `  ${installCommand(packages, facts.privilege)}\n` +
          'then run `npm test` again.',
      );
    }
  }
  if (problems.length === 0) return { kind: 'ready' };
  return {
    kind: 'stop',
    message: `npm test set-up: stopped before the tests.\n\n${problems.join('\n\n')}\n`,
  };
}

/**
 * What the set-up asks of the machine; tests pass their own.
 * @typedef {{
 *   nodeVersion: string,
 *   nodeRequired: string,
 *   modulesInstalled: () => boolean,
 *   isFile: (file: string) => boolean,
 *   isExecutable: (file: string) => boolean,
 *   hasSharedLibrary: (name: string) => boolean,
 *   python: () => { torch: boolean, openblas: boolean, pyyaml: boolean },
 *   hasGo: () => boolean,
 *   osRelease: () => string | null,
 *   hasApt: () => boolean,
 *   isRoot: () => boolean,
 *   sudo: () => 'passwordless' | 'password' | 'absent',
 *   aptCandidates: (packages: string[]) => string[],
 *   run: (command: string[]) => { status: number | null, output: string },
 *   log: (line: string) => void,
 * }} System
 */

/** Which pieces are missing now. @param {System} system @returns {PieceId[]} */
export function findMissing(system) {
  /** @type {PieceId[]} */
  const missing = [];
  if (!system.isExecutable(CHROMIUM)) missing.push('chromium');
  if (!system.isFile(SWIFTSHADER_ICD)) missing.push('swiftshader');
  if (!system.hasSharedLibrary('libvulkan.so.1')) missing.push('vulkan');
  const python = system.python();
  if (!python.torch) missing.push('torch');
  else if (!python.openblas) missing.push('openblas');
  if (!python.pyyaml) missing.push('pyyaml');
  if (!system.hasGo()) missing.push('go');
  return missing;
}

/** "debian", "ubuntu", or what /etc/os-release names (ID, then ID_LIKE). */
export function readOs(/** @type {string | null} */ osRelease) {
  const field = (/** @type {string} */ name) =>
    new RegExp(`^${name}=["']?([^"'\\n]*)`, 'm').exec(osRelease ?? '')?.[1] ?? '';
  const ids = [field('ID'), ...field('ID_LIKE').split(/\s+/)].filter(Boolean);
  return {
    name: field('PRETTY_NAME') || field('ID') || 'unknown',
    debianLike: ids.some((id) => id === 'debian' || id === 'ubuntu'),
  };
}

/** @param {System} system @param {PieceId[]} missing @returns {Facts} */
function gatherFacts(system, missing) {
  const os = readOs(system.osRelease());
  const debianLike = os.debianLike && system.hasApt();
  /** @type {Privilege} */
  let privilege = 'none';
  if (system.isRoot()) privilege = 'root';
  else if (missing.length > 0 && debianLike) {
    const sudo = system.sudo();
    privilege = sudo === 'passwordless' ? 'sudo' : sudo === 'password' ? 'sudo-password' : 'none';
  }
  return {
    nodeVersion: system.nodeVersion,
    nodeRequired: system.nodeRequired,
    modulesInstalled: system.modulesInstalled(),
    missing,
    debianLike,
    osName: os.name,
    privilege,
  };
}

/**
 * What to say when apt-get has run and pieces are still missing: either apt here does not offer a package
 * (`unavailable`), or it installed it somewhere the tests do not look.
 * @param {PieceId[]} still
 * @param {string[]} unavailable
 */
export function stillMissingMessage(still, unavailable) {
  const why =
    unavailable.length > 0
      ? `This system's apt sources offer no ${unavailable.join(', ')}. The tests expect Debian's packages at ` +
        'the paths above (Ubuntu, for one, ships Chromium only as a snap, which has neither path): run them ' +
        'on Debian 12, for instance in a container (`docker run -it debian:12`).'
      : 'apt-get installed the packages, but the tests look for these at the paths named above.';
  return `npm test set-up: stopped before the tests. Still missing:\n${describe(still)}\n${why}\n`;
}

/**
 * The set-up: probe, decide, install what apt offers if it may, check again. Returns the exit code.
 * @param {System} system
 */
export function setUp(system) {
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  const missing = findMissing(system);
  const plan = planSetup(gatherFacts(system, missing));
  if (plan.kind === 'stop') {
    system.log(plan.message);
    return 1;
  }
  if (plan.kind === 'ready') {
    system.log(
      `System set-up: Node ${system.nodeVersion}, Chromium with SwiftShader, the Vulkan loader, PyTorch with ` +
        `OpenBLAS, PyYAML and Go are in place (${seconds()} s).`,
    );
    return 0;
  }
  const sudo = plan.command[0] === 'sudo' ? ['sudo', '-n'] : [];
  system.log(
    `System set-up: installing ${plan.packages.join(', ')} with ${sudo.length ? 'sudo ' : ''}apt-get…`,
  );
  const update = [...sudo, 'apt-get', 'update', '-qq', '-o', 'DPkg::Lock::Timeout=300'];
  const updated = system.run(update);
  if (updated.status !== 0)
    return aptFailed(system, update, updated.output, plan.packages, sudo.length ? 'sudo' : 'root');
  const offered = system.aptCandidates(plan.packages);
  const unavailable = plan.packages.filter((name) => !offered.includes(name));
  const command = plan.command.filter((word) => !unavailable.includes(word));
  if (offered.length > 0) {
    const installed = system.run(command);
    if (installed.status !== 0)
      return aptFailed(system, command, installed.output, plan.packages, sudo.length ? 'sudo' : 'root');
  }
  const still = findMissing(system);
  if (still.length > 0) {
    system.log(stillMissingMessage(still, unavailable));
    return 1;
  }
  system.log(`System set-up: installed in ${seconds()} s.`);
  return 0;
}

/**
 * @param {System} system @param {string[]} command @param {string} output @param {string[]} packages
 * @param {Privilege} privilege
 */
function aptFailed(system, command, output, packages, privilege) {
  const tail = output.trim().split('\n').slice(-15).join('\n');
  system.log(
    `npm test set-up: \`${command.join(' ')}\` failed:\n${tail}\n\n` +
      `Install the packages by hand, then run \`npm test\` again:\n  ${installCommand(packages, privilege)}\n`,
  );
  return 1;
}

// ---- The real machine -------------------------------------------------------------------------------

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// One Python run answers all three Python questions: whether torch and yaml import, and which BLAS torch
// loaded (Debian's libtorch links libblas.so.3, which is OpenBLAS only when libopenblas0-* provides it).
const PYTHON_PROBE = `
import json
found = {"torch": False, "openblas": False, "pyyaml": False}
try:
    import yaml
    found["pyyaml"] = True
except Exception:
    pass
try:
    import torch
    torch.ones(4, 4) @ torch.ones(4, 4)
    found["torch"] = True
    found["openblas"] = any("openblas" in line for line in open("/proc/self/maps"))
except Exception:
    pass
print(json.dumps(found))
`;

/** @type {import('node:child_process').SpawnSyncOptionsWithStringEncoding} */
const quiet = { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 };

/** @param {string} file */
function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** @param {string} name */
function hasSharedLibrary(name) {
  for (const ldconfig of ['/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    const run = spawnSync(ldconfig, ['-p'], quiet);
    if (run.status === 0) return run.stdout.split('\n').some((line) => line.trim().startsWith(`${name} `));
  }
  /** @type {Record<string, string>} */
  const triplets = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
  const triplet = triplets[process.arch] ?? '';
  const dirs = [`/usr/lib/${triplet}`, `/lib/${triplet}`, '/usr/lib64', '/usr/lib', '/lib'];
  return dirs.some((dir) => fs.existsSync(path.join(dir, name)));
}

/** @returns {System} */
function realSystem() {
  const packageJson = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  return {
    nodeVersion: process.versions.node,
    nodeRequired: packageJson.engines?.node ?? '>=0',
    modulesInstalled: () => {
      try {
        createRequire(path.join(ROOT, 'package.json')).resolve('vitest/package.json');
        return true;
      } catch {
        return false;
      }
    },
    isFile: (file) => fs.existsSync(file) && fs.statSync(file).isFile(),
    isExecutable,
    hasSharedLibrary,
    python: () => {
      const run = spawnSync(PYTHON, ['-c', PYTHON_PROBE], quiet);
      try {
        return JSON.parse(run.stdout);
      } catch {
        return { torch: false, openblas: false, pyyaml: false };
      }
    },
    hasGo: () => spawnSync('go', ['version'], quiet).status === 0,
    osRelease: () => {
      try {
        return fs.readFileSync('/etc/os-release', 'utf8');
      } catch {
        return null;
      }
    },
    hasApt: () => isExecutable('/usr/bin/apt-get'),
    isRoot: () => process.getuid?.() === 0,
    sudo: () => {
      const run = spawnSync('sudo', ['-n', 'true'], quiet);
      if (run.error) return 'absent';
      return run.status === 0 ? 'passwordless' : 'password';
    },
    aptCandidates: (packages) => {
      const run = spawnSync('apt-cache', ['policy', ...packages], quiet);
      const offered = [];
      let name = '';
      for (const line of (run.stdout ?? '').split('\n')) {
        const header = /^(\S+?)(?::\w+)?:$/.exec(line);
        if (header) name = header[1];
        else if (/^\s+Candidate:/.test(line) && !/\(none\)/.test(line)) offered.push(name);
      }
      return offered;
    },
    run: (command) => {
      const run = spawnSync(command[0], command.slice(1), {
        ...quiet,
        timeout: 30 * 60_000,
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
      return { status: run.status, output: `${run.stdout ?? ''}${run.stderr ?? ''}${run.error ?? ''}` };
    },
    log: (line) => console.log(line),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = setUp(realSystem());
}
