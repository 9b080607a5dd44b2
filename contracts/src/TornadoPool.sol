// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title TornadoPool
/// @notice A stand-in for a Tornado Cash ETH pool instance (the 1 ETH pool).
/// It keeps the real deposit interface and event, so a watcher that knows the
/// mainnet pool recognizes it, but has no Merkle tree and no withdrawals.
/// Its runtime code is placed at the mainnet pool address through a genesis
/// alloc: no constructor runs there, so it has no constructor, no immutables
/// and starts from empty storage.
contract TornadoPool {
    uint256 public constant denomination = 1 ether;

    mapping(bytes32 => bool) public commitments;
    uint32 public nextIndex;

    event Deposit(bytes32 indexed commitment, uint32 leafIndex, uint256 timestamp);

    /// @notice Deposits exactly `denomination` wei under `commitment`.
    function deposit(bytes32 commitment) external payable {
        require(!commitments[commitment], "The commitment has been submitted");
        require(msg.value == denomination, "Please send `mixDenomination` ETH along with transaction");
        uint32 leafIndex = nextIndex;
        nextIndex = leafIndex + 1;
        commitments[commitment] = true;
        emit Deposit(commitment, leafIndex, block.timestamp);
    }
}
