// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title SingletonWallet
/// @notice A contract wallet laid out like a Safe proxy: slot 0 holds the
/// singleton, the code every call the wallet does not handle itself is
/// delegated to. The owner executes transactions from the wallet with
/// `operation` 0 (call) or 1 (delegatecall), as a Safe's execTransaction
/// does. A delegatecall runs the target's code on the wallet's own storage,
/// so a target that writes slot 0 replaces the singleton, and the wallet
/// logs nothing about it: the shape of the 2025 Bybit theft, without the
/// Safe's signatures.
contract SingletonWallet {
    /// @dev Slot 0, as in a Safe proxy. Only a delegatecall can change it.
    address internal singleton;
    /// @dev Slot 1.
    address public owner;

    constructor(address singleton_, address owner_) {
        require(owner_ != address(0), "SingletonWallet: owner is the zero address");
        singleton = singleton_;
        owner = owner_;
    }

    /// @notice The code the wallet delegates unknown calls to (slot 0).
    function masterCopy() external view returns (address) {
        return singleton;
    }

    /// @notice Runs a call (operation 0) or a delegatecall (operation 1)
    /// from the wallet. Owner only. Reverts with the callee's revert data.
    function execTransaction(address to, uint256 value, bytes calldata data, uint8 operation)
        external
        returns (bytes memory)
    {
        require(msg.sender == owner, "SingletonWallet: caller is not the owner");
        require(operation <= 1, "SingletonWallet: unknown operation");
        bool ok;
        bytes memory ret;
        if (operation == 1) {
            require(value == 0, "SingletonWallet: a delegatecall carries no value");
            (ok, ret) = to.delegatecall(data);
        } else {
            (ok, ret) = to.call{value: value}(data);
        }
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {}

    /// @dev Everything else runs the singleton's code, as a Safe proxy does.
    fallback() external payable {
        assembly {
            let impl := sload(0)
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
