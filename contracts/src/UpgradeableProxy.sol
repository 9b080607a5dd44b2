// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title UpgradeableProxy
/// @notice A minimal EIP-1967 proxy. The implementation and admin addresses
/// live in the standard EIP-1967 slots, so any tool that reads those slots
/// (block explorers, keywatch) sees them. upgradeTo and changeAdmin are
/// handled by the proxy itself and are never forwarded; every other call is
/// delegated to the implementation.
contract UpgradeableProxy {
    /// @dev bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1)
    bytes32 internal constant IMPLEMENTATION_SLOT =
        0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc;
    /// @dev bytes32(uint256(keccak256("eip1967.proxy.admin")) - 1)
    bytes32 internal constant ADMIN_SLOT =
        0xb53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103;

    event Upgraded(address indexed implementation);
    event AdminChanged(address previousAdmin, address newAdmin);

    constructor(address impl, address admin) {
        _setImplementation(impl);
        _setAdmin(admin);
    }

    /// @notice Points the proxy at a new implementation. Admin only.
    function upgradeTo(address newImplementation) external {
        require(msg.sender == _admin(), "UpgradeableProxy: caller is not the admin");
        _setImplementation(newImplementation);
    }

    /// @notice Hands the admin role to another address. Admin only.
    function changeAdmin(address newAdmin) external {
        require(msg.sender == _admin(), "UpgradeableProxy: caller is not the admin");
        _setAdmin(newAdmin);
    }

    fallback() external payable {
        _delegate();
    }

    receive() external payable {
        _delegate();
    }

    function _admin() private view returns (address a) {
        bytes32 slot = ADMIN_SLOT;
        assembly {
            a := sload(slot)
        }
    }

    function _setImplementation(address impl) private {
        require(impl.code.length > 0, "UpgradeableProxy: implementation is not a contract");
        bytes32 slot = IMPLEMENTATION_SLOT;
        assembly {
            sstore(slot, impl)
        }
        emit Upgraded(impl);
    }

    function _setAdmin(address newAdmin) private {
        require(newAdmin != address(0), "UpgradeableProxy: new admin is the zero address");
        address previous = _admin();
        bytes32 slot = ADMIN_SLOT;
        assembly {
            sstore(slot, newAdmin)
        }
        emit AdminChanged(previous, newAdmin);
    }

    function _delegate() private {
        bytes32 slot = IMPLEMENTATION_SLOT;
        assembly {
            let impl := sload(slot)
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), impl, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 {
                revert(0, returndatasize())
            }
            default {
                return(0, returndatasize())
            }
        }
    }
}
