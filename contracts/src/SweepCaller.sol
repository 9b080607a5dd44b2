// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import "./Sweeper.sol";

/// @title SweepCaller
/// @notice Drives a Sweeper from inside a contract, so the ETH leaves two
/// frames below the transaction, and undoes a sweep inside a transaction that
/// succeeds, so a trace shows a value frame that never happened.
contract SweepCaller {
    /// @notice Makes `sweeper` send amount wei to `to`: the transaction calls
    /// this contract, which calls the sweeper (frame 0), which pays `to`
    /// (frame 0.0).
    function sweepVia(Sweeper sweeper, address payable to, uint256 amount) external {
        sweeper.sweep(to, amount);
    }

    /// @notice Sweeps and then reverts the sweep, catching the revert: the
    /// transaction succeeds and no ETH moves, though the trace holds the
    /// value frame (under a reverted frame). Only the inner call's own revert
    /// is caught: had it failed sooner (out of gas, before the sweep ran),
    /// the whole transaction reverts, so gas estimation gives the sweep
    /// enough to run.
    function sweepReverted(Sweeper sweeper, address payable to, uint256 amount) external {
        try this.sweepThenFail(sweeper, to, amount) {
            revert("SweepCaller: the inner call should have reverted");
        } catch Error(string memory reason) {
            require(keccak256(bytes(reason)) == keccak256("SweepCaller: undone"), reason);
        }
    }

    /// @notice Sweeps, then reverts.
    function sweepThenFail(Sweeper sweeper, address payable to, uint256 amount) external {
        sweeper.sweep(to, amount);
        revert("SweepCaller: undone");
    }

    /// @notice Forwards what it is sent to `to` by an internal call: a
    /// contract that passes funds on in the transaction that brings them.
    function forward(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "SweepCaller: forward failed");
    }
}
