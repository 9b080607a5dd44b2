// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Vault
/// @notice Version 1 of a treasury vault that sits behind UpgradeableProxy.
/// The owner pays out ERC-20 tokens the vault holds. Its state lives in a
/// namespaced slot (ERC-7201 style), away from slot 0 and from the proxy's
/// EIP-1967 slots, so upgrades keep it intact.
contract Vault {
    /// @custom:storage-location erc7201:keywatch.storage.Vault
    struct VaultStorage {
        address owner;
        bool initialized;
    }

    /// @dev keccak256(abi.encode(uint256(keccak256("keywatch.storage.Vault")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant VAULT_STORAGE_SLOT =
        0x6032e2da5673f705f5d219b11582b0054a394eacc5b3dbdc0b1033b6d6648700;

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    modifier onlyOwner() {
        require(msg.sender == _vaultStorage().owner, "Vault: caller is not the owner");
        _;
    }

    /// @dev Locks the bare implementation so only proxies can be initialized.
    constructor() {
        _vaultStorage().initialized = true;
    }

    /// @notice Sets the first owner. Callable once, through the proxy.
    function initialize(address owner_) external {
        VaultStorage storage s = _vaultStorage();
        require(!s.initialized, "Vault: already initialized");
        require(owner_ != address(0), "Vault: owner is the zero address");
        s.initialized = true;
        _transferOwnership(owner_);
    }

    function owner() external view returns (address) {
        return _vaultStorage().owner;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        require(newOwner != address(0), "Vault: new owner is the zero address");
        _transferOwnership(newOwner);
    }

    /// @notice Sends `amount` of `token` held by the vault to `to`. Owner only.
    function pay(address token, address to, uint256 amount) external onlyOwner {
        _safeTransfer(token, to, amount);
    }

    function _transferOwnership(address newOwner) internal {
        VaultStorage storage s = _vaultStorage();
        address previous = s.owner;
        s.owner = newOwner;
        emit OwnershipTransferred(previous, newOwner);
    }

    /// @dev ERC-20 transfer that accepts tokens returning nothing and rejects
    /// tokens returning false.
    function _safeTransfer(address token, address to, uint256 amount) internal {
        require(token.code.length > 0, "Vault: token is not a contract");
        (bool ok, bytes memory ret) = token.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
        require(ok && (ret.length == 0 || abi.decode(ret, (bool))), "Vault: token transfer failed");
    }

    function _vaultStorage() internal pure returns (VaultStorage storage s) {
        bytes32 slot = VAULT_STORAGE_SLOT;
        assembly {
            s.slot := slot
        }
    }
}
