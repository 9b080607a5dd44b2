#!/usr/bin/env node
// Compiles contracts/src/*.sol with solcjs (standard JSON, optimizer on) and
// writes one artifact per contract to contracts/build/<Name>.json.
//
// Run it through build.sh, which installs the pinned solc and passes its
// location in SOLC_MODULE and the expected version in SOLC_VERSION.
'use strict';

const fs = require('fs');
const path = require('path');

const here = __dirname;
const srcDir = path.join(here, 'src');
const outDir = path.join(here, 'build');

// Cancun is supported by every client and simulated chain keywatch runs
// against; pinning it keeps the bytecode independent of solc's default.
const EVM_VERSION = 'cancun';
const OPTIMIZER_RUNS = 200;

function main() {
  const solcModule = process.env.SOLC_MODULE;
  const wantVersion = process.env.SOLC_VERSION;
  if (!solcModule || !wantVersion) {
    throw new Error('SOLC_MODULE and SOLC_VERSION must be set (run contracts/build.sh)');
  }
  const solc = require(solcModule);
  const version = solc.version();
  if (!version.startsWith(wantVersion + '+')) {
    throw new Error(`solc ${version} found, ${wantVersion} wanted`);
  }

  const files = fs.readdirSync(srcDir).filter((f) => f.endsWith('.sol')).sort();
  if (files.length === 0) {
    throw new Error(`no .sol files in ${srcDir}`);
  }
  const sources = {};
  for (const f of files) {
    sources[f] = { content: fs.readFileSync(path.join(srcDir, f), 'utf8') };
  }

  const input = {
    language: 'Solidity',
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
      outputSelection: {
        '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
      },
    },
  };

  // Sources import each other with relative paths ("./Vault.sol"), which
  // resolve to the keys above; anything else is not part of this build.
  const findImports = (p) => ({ error: `import not found: ${p} (only files in contracts/src may be imported)` });
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  let failed = false;
  for (const e of output.errors || []) {
    process.stderr.write((e.formattedMessage || e.message) + '\n');
    if (e.severity === 'error') failed = true;
  }
  if (failed) {
    throw new Error('compilation failed');
  }

  fs.mkdirSync(outDir, { recursive: true });
  const written = new Set();
  for (const f of files) {
    // One artifact per source file: the contract named like the file.
    const name = path.basename(f, '.sol');
    const c = output.contracts && output.contracts[f] && output.contracts[f][name];
    if (!c) {
      throw new Error(`${f} does not define a contract named ${name}`);
    }
    const bytecode = c.evm.bytecode.object;
    const deployed = c.evm.deployedBytecode.object;
    if (!bytecode || !deployed) {
      throw new Error(`${name} has no bytecode (abstract contract or interface?)`);
    }
    if (bytecode.includes('__$') || deployed.includes('__$')) {
      throw new Error(`${name} needs library linking, which this build does not do`);
    }
    const artifact = {
      contract: name,
      solc_version: version,
      abi: c.abi,
      bytecode: '0x' + bytecode,
      deployed_bytecode: '0x' + deployed,
    };
    const file = `${name}.json`;
    fs.writeFileSync(path.join(outDir, file), JSON.stringify(artifact, null, 2) + '\n');
    written.add(file);
    process.stdout.write(`wrote build/${file} (${deployed.length / 2} bytes runtime)\n`);
  }

  // Drop artifacts of contracts whose source is gone.
  for (const f of fs.readdirSync(outDir)) {
    if (f.endsWith('.json') && !written.has(f)) {
      fs.unlinkSync(path.join(outDir, f));
      process.stdout.write(`removed stale build/${f}\n`);
    }
  }
}

try {
  main();
} catch (err) {
  process.stderr.write(`build.js: ${err.message}\n`);
  process.exit(1);
}
