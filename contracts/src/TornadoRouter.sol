// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import "./TornadoPool.sol";

/// @title TornadoRouter
/// @notice A stand-in for the Tornado Cash router. deposit forwards the ETH to
/// a pool and records the encrypted note, with the same signature and event
/// as the mainnet router. Like TornadoPool it is placed through a genesis
/// alloc, so it holds no constructor state.
contract TornadoRouter {
    event EncryptedNote(address indexed sender, bytes encryptedNote);

    function deposit(address tornado, bytes32 commitment, bytes calldata encryptedNote) external payable {
        TornadoPool(tornado).deposit{value: msg.value}(commitment);
        emit EncryptedNote(msg.sender, encryptedNote);
    }
}
