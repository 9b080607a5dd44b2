// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Sweeper
/// @notice A contract that holds ETH and lets anyone move it on by an
/// internal call: it stands for a watched vault or Safe whose guard was
/// bypassed (a malicious upgrade, a compromised module). A sweep is a CALL
/// frame with value inside someone else's transaction; no log is emitted,
/// so only a trace (or the balance) shows the ETH leaving.
contract Sweeper {
    receive() external payable {}

    /// @notice Sends amount wei to `to` by an internal call.
    function sweep(address payable to, uint256 amount) external {
        (bool ok, ) = to.call{value: amount}("");
        require(ok, "Sweeper: transfer failed");
    }

    /// @notice Sends everything to `to` through SELFDESTRUCT (since Cancun
    /// the code stays; the balance moves all the same).
    function destroy(address payable to) external {
        selfdestruct(to);
    }
}
