#!/usr/bin/env node
// Writes the Safe artifacts keywatch's tests use, and the addresses of Safe's
// own library deployments, from the installed npm packages (see extract.sh,
// which installs them and passes their folder in NODE_MODULES).
//
// contracts/safe/<release>/<Name>.json:
//   {contract, package, package_version, source, abi, bytecode, deployed_bytecode}
// contracts/safe/deployments.json:
//   {package, package_version, deployments: [{version, contract, deployment, address, code_hash}]}
'use strict';

const fs = require('fs');
const path = require('path');

const here = __dirname;

// The compiled contracts taken from each package, by the path of their
// Hardhat artifact inside it.
const releases = [
  {
    release: '1.3.0',
    package: '@gnosis.pm/safe-contracts',
    version: '1.3.0',
    artifacts: [
      'contracts/GnosisSafe.sol/GnosisSafe.json',
      'contracts/GnosisSafeL2.sol/GnosisSafeL2.json',
      'contracts/proxies/GnosisSafeProxyFactory.sol/GnosisSafeProxyFactory.json',
      'contracts/libraries/MultiSend.sol/MultiSend.json',
      'contracts/libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json',
      'contracts/examples/libraries/SignMessage.sol/SignMessageLib.json',
    ],
  },
  {
    release: '1.4.1',
    package: '@safe-global/safe-contracts',
    version: '1.4.1',
    artifacts: [
      'contracts/Safe.sol/Safe.json',
      'contracts/SafeL2.sol/SafeL2.json',
      'contracts/proxies/SafeProxyFactory.sol/SafeProxyFactory.json',
      'contracts/libraries/MultiSend.sol/MultiSend.json',
      'contracts/libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json',
      'contracts/libraries/SignMessageLib.sol/SignMessageLib.json',
    ],
  },
];

// The library deployments a Safe may delegatecall in normal use: the
// default allow list of keywatch's delegatecall detector.
const deploymentsPackage = '@safe-global/safe-deployments';
const libraries = [
  { version: '1.3.0', asset: 'multi_send', kinds: ['canonical', 'eip155'] },
  { version: '1.3.0', asset: 'multi_send_call_only', kinds: ['canonical', 'eip155'] },
  { version: '1.3.0', asset: 'sign_message_lib', kinds: ['canonical', 'eip155'] },
  { version: '1.4.1', asset: 'multi_send', kinds: ['canonical'] },
  { version: '1.4.1', asset: 'multi_send_call_only', kinds: ['canonical'] },
  { version: '1.4.1', asset: 'sign_message_lib', kinds: ['canonical'] },
];

function write(file, value) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
  process.stdout.write(`wrote ${path.relative(path.dirname(here), file)}\n`);
}

function pkgVersion(modules, name) {
  return JSON.parse(fs.readFileSync(path.join(modules, name, 'package.json'), 'utf8')).version;
}

function main() {
  const modules = process.env.NODE_MODULES;
  if (!modules) {
    throw new Error('NODE_MODULES must be set (run contracts/safe/extract.sh)');
  }
  for (const r of releases) {
    const got = pkgVersion(modules, r.package);
    if (got !== r.version) {
      throw new Error(`${r.package} ${got} installed, ${r.version} wanted`);
    }
    const outDir = path.join(here, r.release);
    const written = new Set();
    for (const rel of r.artifacts) {
      const a = JSON.parse(fs.readFileSync(path.join(modules, r.package, 'build/artifacts', rel), 'utf8'));
      if (!a.bytecode || a.bytecode === '0x' || !a.deployedBytecode) {
        throw new Error(`${r.package} ${rel}: no bytecode`);
      }
      if (Object.keys(a.linkReferences || {}).length > 0) {
        throw new Error(`${r.package} ${rel}: needs library linking`);
      }
      const file = `${a.contractName}.json`;
      write(path.join(outDir, file), {
        contract: a.contractName,
        package: r.package,
        package_version: r.version,
        source: a.sourceName,
        abi: a.abi,
        bytecode: a.bytecode,
        deployed_bytecode: a.deployedBytecode,
      });
      written.add(file);
    }
    for (const f of fs.readdirSync(outDir)) {
      if (f.endsWith('.json') && !written.has(f)) {
        fs.unlinkSync(path.join(outDir, f));
        process.stdout.write(`removed stale safe/${r.release}/${f}\n`);
      }
    }
  }

  const deployments = [];
  for (const lib of libraries) {
    const file = path.join(modules, deploymentsPackage, 'dist/assets', 'v' + lib.version, lib.asset + '.json');
    const d = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (d.version !== lib.version || !d.released) {
      throw new Error(`${file}: version ${d.version}, released ${d.released}`);
    }
    for (const kind of lib.kinds) {
      const dep = d.deployments && d.deployments[kind];
      if (!dep || !/^0x[0-9a-fA-F]{40}$/.test(dep.address)) {
        throw new Error(`${file}: no ${kind} deployment`);
      }
      deployments.push({
        version: lib.version,
        contract: d.contractName,
        deployment: kind,
        address: dep.address,
        code_hash: dep.codeHash,
      });
    }
  }
  write(path.join(here, 'deployments.json'), {
    package: deploymentsPackage,
    package_version: pkgVersion(modules, deploymentsPackage),
    deployments,
  });
}

try {
  main();
} catch (err) {
  process.stderr.write(`extract.js: ${err.message}\n`);
  process.exit(1);
}
