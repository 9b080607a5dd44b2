// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Permit2
/// @notice A stand-in for Uniswap's Permit2 (allowance transfer part), whose
/// runtime code is placed at the real address,
/// 0x000000000022D473030F116dDEE9F6B43aC78BA3, through a genesis alloc. It
/// keeps the real interface of approve and permit (one token), their storage
/// of amount, expiration and nonce, the EIP-712 domain and PermitSingle hash,
/// signature checks (65-byte ECDSA, EIP-1271 for contract owners), and the
/// real Approval and Permit events (src/interfaces/IAllowanceTransfer.sol of
/// github.com/Uniswap/permit2). No transfers, batches, lockdown or nonce
/// invalidation. No constructor and no immutables: none runs at an alloc.
contract Permit2 {
    struct PackedAllowance {
        uint160 amount;
        uint48 expiration;
        uint48 nonce;
    }

    struct PermitDetails {
        address token;
        uint160 amount;
        uint48 expiration;
        uint48 nonce;
    }

    struct PermitSingle {
        PermitDetails details;
        address spender;
        uint256 sigDeadline;
    }

    event Approval(
        address indexed owner, address indexed token, address indexed spender, uint160 amount, uint48 expiration
    );
    event Permit(
        address indexed owner,
        address indexed token,
        address indexed spender,
        uint160 amount,
        uint48 expiration,
        uint48 nonce
    );

    error SignatureExpired(uint256 signatureDeadline);
    error InvalidNonce();
    error InvalidSignatureLength();
    error InvalidSignature();
    error InvalidSigner();
    error InvalidContractSignature();

    bytes32 private constant _TYPE_HASH =
        keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)");
    bytes32 private constant _HASHED_NAME = keccak256("Permit2");
    bytes32 private constant _PERMIT_DETAILS_TYPEHASH =
        keccak256("PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)");
    bytes32 private constant _PERMIT_SINGLE_TYPEHASH = keccak256(
        "PermitSingle(PermitDetails details,address spender,uint256 sigDeadline)PermitDetails(address token,uint160 amount,uint48 expiration,uint48 nonce)"
    );

    /// @notice owner => token => spender => allowance.
    mapping(address => mapping(address => mapping(address => PackedAllowance))) public allowance;

    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return keccak256(abi.encode(_TYPE_HASH, _HASHED_NAME, block.chainid, address(this)));
    }

    /// @notice Sets the caller's allowance of `token` for `spender`. An
    /// expiration of 0 lasts until the end of this block.
    function approve(address token, address spender, uint160 amount, uint48 expiration) external {
        PackedAllowance storage allowed = allowance[msg.sender][token][spender];
        allowed.expiration = expiration == 0 ? uint48(block.timestamp) : expiration;
        allowed.amount = amount;
        emit Approval(msg.sender, token, spender, amount, expiration);
    }

    /// @notice Sets `owner`'s allowance from a signed PermitSingle; anyone
    /// may submit it.
    function permit(address owner, PermitSingle memory permitSingle, bytes calldata signature) external {
        if (block.timestamp > permitSingle.sigDeadline) revert SignatureExpired(permitSingle.sigDeadline);
        bytes32 detailsHash = keccak256(abi.encode(_PERMIT_DETAILS_TYPEHASH, permitSingle.details));
        bytes32 structHash =
            keccak256(abi.encode(_PERMIT_SINGLE_TYPEHASH, detailsHash, permitSingle.spender, permitSingle.sigDeadline));
        _verify(signature, keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR(), structHash)), owner);

        PermitDetails memory d = permitSingle.details;
        PackedAllowance storage allowed = allowance[owner][d.token][permitSingle.spender];
        if (allowed.nonce != d.nonce) revert InvalidNonce();
        unchecked {
            allowed.nonce = d.nonce + 1;
        }
        allowed.expiration = d.expiration == 0 ? uint48(block.timestamp) : d.expiration;
        allowed.amount = d.amount;
        emit Permit(owner, d.token, permitSingle.spender, d.amount, d.expiration, d.nonce);
    }

    function _verify(bytes calldata signature, bytes32 hash, address claimedSigner) private view {
        if (claimedSigner.code.length > 0) {
            (bool ok, bytes memory ret) =
                claimedSigner.staticcall(abi.encodeWithSelector(0x1626ba7e, hash, signature));
            if (!ok || ret.length != 32 || abi.decode(ret, (bytes4)) != 0x1626ba7e) revert InvalidContractSignature();
            return;
        }
        if (signature.length != 65) revert InvalidSignatureLength();
        (bytes32 r, bytes32 s) = abi.decode(signature, (bytes32, bytes32));
        uint8 v = uint8(signature[64]);
        address signer = ecrecover(hash, v, r, s);
        if (signer == address(0)) revert InvalidSignature();
        if (signer != claimedSigner) revert InvalidSigner();
    }
}
