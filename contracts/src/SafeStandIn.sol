// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title SafeStandIn
/// @notice A stand-in for a Safe multisig as keywatch's Safe queue poller
/// reads it from the chain: `nonce()` and `VERSION()` with a Safe's
/// selectors, `getOwners()`, `approvedHashes(owner, hash)`, and the `ExecutionSuccess` and
/// `ExecutionFailure` events a Safe logs when `execTransaction` uses a nonce.
/// It checks no signatures and runs no call: `execute` only uses the nonce
/// and logs the safeTxHash it was given, as a Safe does once it has checked
/// the signatures. The nonce sits in slot 5, as in a Safe.
///
/// Its runtime code can be placed at any address through a genesis alloc
/// (contracts.SafeStandInAlloc), where no constructor runs: the storage is
/// then written directly.
contract SafeStandIn {
    // Slots 0 to 4 of a Safe: singleton, modules, owners, ownerCount,
    // threshold. Unused here; they keep the nonce in its slot.
    uint256[5] private safeLayout;
    uint256 public nonce; // slot 5
    string private version; // slot 6
    mapping(address => mapping(bytes32 => uint256)) public approvedHashes; // slot 7
    address[] private owners; // slot 8

    event ExecutionSuccess(bytes32 txHash, uint256 payment);
    event ExecutionFailure(bytes32 txHash, uint256 payment);
    event ApproveHash(bytes32 indexed approvedHash, address indexed owner);

    constructor(string memory safeVersion, uint256 startNonce, address[] memory safeOwners) {
        version = safeVersion;
        nonce = startNonce;
        owners = safeOwners;
    }

    /// @notice The owners, as a Safe lists them (keywatch asks at start
    /// whether a wallet marked as a Safe is one).
    function getOwners() external view returns (address[] memory) {
        return owners;
    }

    /// @notice The Safe version whose EIP-712 domain the stand-in's
    /// transactions are signed under ("1.3.0", "1.1.1").
    function VERSION() external view returns (string memory) {
        return version;
    }

    /// @notice Uses the current nonce for `safeTxHash` and logs it, as
    /// execTransaction does: ExecutionSuccess when `success`, else
    /// ExecutionFailure (a failed inner call still uses the nonce).
    function execute(bytes32 safeTxHash, bool success) external {
        nonce++;
        if (success) {
            emit ExecutionSuccess(safeTxHash, 0);
        } else {
            emit ExecutionFailure(safeTxHash, 0);
        }
    }

    /// @notice Marks `hashToApprove` as approved by the sender, as a Safe
    /// owner's on-chain approval does.
    function approveHash(bytes32 hashToApprove) external {
        approvedHashes[msg.sender][hashToApprove] = 1;
        emit ApproveHash(hashToApprove, msg.sender);
    }
}
